"""Files: bounded, depth-safe inputs; outputs that appear whole or not at all.

A library module (not the command line) so that every layer that reads or
writes a file, the sweep, the fleet and the reports as well as the
commands, shares one reader and one writer.

Inputs (:func:`read_bytes`, :func:`read_text`, :func:`load_toml`,
:func:`load_json_line`):

* only regular files are read: a directory, a FIFO, a device (``/dev/zero``)
  or a socket is refused before reading, with one line;
* at most :data:`hcsim.limits.FILE_BYTES` (16 MiB) are read, whatever the
  file claims to be;
* TOML and JSON documents nested deeper than :data:`hcsim.limits.DEPTH` are
  refused (the parsers recurse: a file nested 10,000 levels would otherwise
  end in a ``RecursionError``);
* every :class:`OSError` (``ENOENT``, ``EACCES``, ``ELOOP``, ``ENAMETOOLONG``,
  ``EIO``, ...) becomes :class:`~hcsim.errors.InputError`
  ``PATH: strerror``.

Outputs (:func:`check_output`, :func:`atomic_file`, :func:`emit`):

* an existing target must be a regular file.  A directory, FIFO, device or
  socket is refused (``--output /dev/null`` as root would otherwise replace
  the device node with a regular file);
* **a symbolic link is refused**, even one to a regular file: the rename
  that makes the output appear whole would replace the link itself, not
  the file it points to, and writing through it in place would give up
  atomicity.  Give the link's target instead;
* the new file keeps an existing file's permission bits (``0600`` stays
  ``0600``; set-user/group-ID bits are dropped, as a write by the kernel
  would) and, where the process may, its owner and group; a new file gets
  ``0666 & ~umask`` as ``open()`` would.  Hard links to the old file keep
  the old contents (the new file is a new inode);
* :func:`check_output` runs before any work, and :func:`atomic_file` checks
  again just before the rename;
* the data is written to ``.NAME.XXXXXXXX`` beside the target, flushed and
  ``fsync``-ed, then renamed over it.  On any exception, Ctrl-C and SIGTERM
  included (the command line turns SIGTERM into an exception,
  :class:`Terminated`), the temporary file is removed and the previous
  output is untouched.  Disk full (``ENOSPC``), a file-size limit
  (``EFBIG``) or ``EIO`` are one line naming the target.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from hcsim import limits
from hcsim.errors import InputError

#: Temporary files being written now (removed by :func:`cleanup`).
_TEMPS: set[str] = set()


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: raised by the command line's handler.

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so that no
    ``except Exception`` swallows it and every ``finally`` (temporary files,
    worker pools, Jupyter kernels) runs on the way out.  ``signum`` is the
    signal (the exit code is 128 + signum).
    """

    def __init__(self, signum: int = 15):
        super().__init__(signum)
        self.signum = signum


def on_sigterm(signum, frame):  # noqa: ARG001 - signal handler API
    """SIGTERM/SIGHUP handler: unwind like Ctrl-C (temporary files, workers, kernels), once.

    Installed by the command line; a second signal while unwinding is
    ignored so that the clean-up is not cut short.
    """
    import signal

    signal.signal(signum, signal.SIG_IGN)
    raise Terminated(signum)


def os_error(path: str | os.PathLike | None, exc: OSError, what: str = "") -> InputError:
    """One line for an OSError: ``PATH: strerror`` (ENOENT/EISDIR name ``what``)."""
    shown = path if path is not None else exc.filename
    if what and exc.errno == errno.ENOENT:
        return InputError(f"{shown}: no such {what} file")
    if what and exc.errno == errno.EISDIR:
        return InputError(f"{shown}: is a directory, not a {what} file")
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    return InputError(f"{shown}: {reason}" if shown is not None else reason)


# --------------------------------------------------------------------------
# Inputs

def read_bytes(path: str | os.PathLike, what: str = "input",
               limit: int = limits.FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; InputError otherwise."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is
        # refused below like any file that is not regular.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise os_error(path, exc, what) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: is a directory, not a {what} file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file (a {_kind(st.st_mode)}); "
                             f"a {what} file must be a regular file")
        if st.st_size > limit:
            raise InputError(f"{path}: {what} file too large ({st.st_size:,} bytes; "
                             f"at most {limit:,})")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:          # the file grew while being read
                raise InputError(f"{path}: {what} file too large (more than "
                                 f"{limit:,} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise os_error(path, exc, what) from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, what: str = "input") -> str:
    """The UTF-8 text of a regular file (see :func:`read_bytes`)."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 {what} file (byte {exc.start:,})") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return name
    return "special file"


def depth(value: Any, limit: int = limits.DEPTH) -> int:
    """Nesting depth of dicts and lists (iterative; stops counting past ``limit``)."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            level += 1
            deepest = max(deepest, level)
            if level > limit:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
    return deepest


_TOKENS = re.compile(r'"""|\'\'\'|\\.|["\'#\[\]{}\n]', re.S)


def _scan_depth(text: str) -> int:
    """Bracket depth of a TOML or JSON text, ignoring strings and comments.

    An upper bound of the document's nesting, good enough to refuse a hostile
    file before a recursive parser sees it (a TOML header ``[a.b]`` counts
    one; dotted keys are counted after parsing, by :func:`depth`).
    """
    level = deepest = 0
    quote = None            # the delimiter of the string being skipped
    comment = False
    for m in _TOKENS.finditer(text):
        tok = m.group()
        if comment:
            comment = tok != "\n"
        elif quote:
            if tok == quote or (tok == "\n" and len(quote) == 1):
                quote = None
        elif tok in ('"', "'", '"""', "'''"):
            quote = tok
        elif tok == "#":
            comment = True
        elif tok in "[{":
            level += 1
            deepest = max(deepest, level)
        elif tok in "]}":
            level = max(0, level - 1)
    return deepest


def _check_depth(doc: Any, origin: str) -> Any:
    if depth(doc) > limits.DEPTH:
        raise InputError(f"{origin}: nested more than {limits.DEPTH} levels deep")
    return doc


def loads_toml(text: str, origin: str) -> dict:
    """Parse TOML text; malformed or too deep is one InputError naming ``origin``."""
    import tomllib

    if _scan_depth(text) > limits.DEPTH:
        raise InputError(f"{origin}: nested more than {limits.DEPTH} levels deep")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{origin}: malformed TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"{origin}: nested more than {limits.DEPTH} levels deep") from None
    except ValueError as exc:      # e.g. an integer of more than 4300 digits
        raise InputError(f"{origin}: malformed TOML: {exc}".splitlines()[0]) from None
    return _check_depth(doc, origin)


def load_toml(path: str | os.PathLike, what: str = "input") -> dict:
    """Read and parse a TOML file (bounded, depth-safe); one InputError on any failure."""
    data = read_bytes(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 TOML file") from None
    return loads_toml(text, str(path))


def loads_json(text: str, origin: str) -> Any:
    """Parse one JSON document; malformed or too deep is one InputError."""
    if _scan_depth(text) > limits.DEPTH:
        raise InputError(f"{origin}: nested more than {limits.DEPTH} levels deep")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise InputError(f"{origin}: nested more than {limits.DEPTH} levels deep") from None
    except ValueError as exc:      # JSONDecodeError, huge integers
        raise InputError(f"{origin}: not JSON ({str(exc).splitlines()[0]})") from None
    _check_depth(doc, origin)
    _check_unicode(doc, origin)
    return doc


def _check_unicode(doc: Any, origin: str) -> None:
    """JSON can spell lone surrogates (``"\\udcff"``): not text, refused.

    They would fail later, when printed to a UTF-8 terminal or file.
    """
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"{origin}: a string holds a lone surrogate "
                                 f"({item!r} is not valid Unicode)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# --------------------------------------------------------------------------
# Outputs

def _target_stat(output: str | os.PathLike) -> os.stat_result | None:
    """lstat of an existing target (None if absent); InputError if not writable over."""
    try:
        st = os.lstat(output)
    except (FileNotFoundError, NotADirectoryError):
        return None             # check_output says which directory is missing
    except OSError as exc:
        raise os_error(output, exc) from None
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{output}: is a symbolic link; hcsim does not write through "
                         "links (give the file it points to)")
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{output}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{output}: exists and is not a regular file (a "
                         f"{_kind(st.st_mode)}); hcsim only replaces regular files")
    return st


def _parent(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def check_output(output: str | os.PathLike | None) -> None:
    """Fail now, before any work, if ``output`` cannot be written (None: stdout)."""
    if output is None:
        return
    if str(output) == "":
        raise InputError("output path is empty")
    target = Path(output)
    _target_stat(output)
    parent = _parent(target)
    try:
        if not stat.S_ISDIR(os.stat(parent).st_mode):
            raise InputError(f"{output}: directory does not exist ({str(parent)!r} "
                             "is not a directory)")
    except FileNotFoundError:
        raise InputError(f"{output}: directory does not exist ({str(parent)!r})") from None
    except OSError as exc:
        raise os_error(output, exc) from None
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise InputError(f"{output}: cannot write ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def check_outputs(*outputs: str | os.PathLike | None) -> None:
    """:func:`check_output` on each, and no two the same file."""
    seen: dict[str, str] = {}
    for out in outputs:
        if out is None:
            continue
        check_output(out)
        key = os.path.realpath(out)
        if key in seen:
            raise InputError(f"{out}: given for two outputs (also as {seen[key]})")
        seen[key] = str(out)


@contextmanager
def atomic_file(output: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A file that appears at ``output`` whole, or not at all (module docstring).

    Written to a temporary file beside it and renamed when the block ends;
    an exception (Ctrl-C and SIGTERM included) removes the temporary file
    instead.  An OSError while writing is one InputError naming ``output``.
    """
    target = Path(output)
    old = _target_stat(output)
    tmp = None
    try:
        with _signals_held():       # no window where the file exists unrecorded
            try:
                fd, tmp = tempfile.mkstemp(dir=_parent(target), prefix=f".{target.name}.")
            except OSError as exc:
                raise InputError(f"{output}: cannot write ({exc.strerror})") from None
            _TEMPS.add(tmp)
        try:
            if old is None:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, 0o666 & ~umask)      # as open() would, not mkstemp's 0600
            else:
                os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o1777)
                try:
                    os.fchown(fd, old.st_uid, old.st_gid)
                except OSError:
                    pass            # only root may give a file away: keep ours
            with os.fdopen(fd, mode) as fh:
                fd = -1
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            _target_stat(output)                # still not a link, FIFO, ...
            os.replace(tmp, target)
            _TEMPS.discard(tmp)
            tmp = None
        except OSError as exc:
            raise os_error(output, exc) from None
        finally:
            if fd >= 0:
                os.close(fd)
    finally:
        if tmp is not None:
            _remove(tmp)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Delay SIGINT, SIGTERM and SIGHUP (main thread, POSIX) for a few statements."""
    import signal
    import threading

    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    if threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError:
        pass
    _TEMPS.discard(tmp)


def cleanup() -> None:
    """Remove every temporary file still being written (last resort on exit)."""
    for tmp in list(_TEMPS):
        _remove(tmp)


def emit(text: str, output: str | None) -> None:
    """Write the finished output; a file appears whole or not at all."""
    if output is None:
        sys.stdout.write(text)
        return
    with atomic_file(output) as fh:
        fh.write(text)
