"""Files: outputs that appear whole or not at all, checked before any work.

A library module (not the command line) so that every layer that writes a
file, the sweep, the fleet and the reports as well as the commands, shares
one writer.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hcsim.errors import InputError


@contextmanager
def atomic_file(output: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A file that appears at ``output`` whole, or not at all.

    Written to a temporary file beside it and renamed when the block ends;
    an exception (Ctrl-C included) removes the temporary file instead.
    """
    target = Path(output)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)      # as open() would, not mkstemp's 0600
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit(text: str, output: str | None) -> None:
    """Write the finished output; a file appears whole or not at all."""
    if output is None:
        sys.stdout.write(text)
        return
    with atomic_file(output) as fh:
        fh.write(text)


def check_output(output: str | os.PathLike | None) -> None:
    """Fail now, before any work, if ``output`` cannot be written (None: stdout)."""
    if output is None:
        return
    target = Path(output)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"{output}: is a directory")
    if not parent.is_dir():
        raise InputError(f"{output}: directory does not exist ({str(parent)!r})")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise InputError(f"{output}: cannot write ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)
