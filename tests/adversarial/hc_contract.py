"""The command-line contract every adversarial case asserts (DESIGN.md section 7).

* exit 2 (143 for SIGTERM, 130 for SIGINT), or 0/1 where the input may be good;
* on failure exactly one stderr line ``hcsim: error: ...`` and no traceback;
* every pre-existing output byte-for-byte and mode unchanged;
* no temporary file (``.NAME.XXXXXXXX``) left beside any output;
* no child process left.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from pathlib import Path

from hcsim.frontends import cli

REPO = Path(__file__).resolve().parents[2]
LINUX_PROBE = REPO / "data" / "kernel-probe" / "6.16.12+deb13-arm64.jsonl"
FLEET = REPO / "data" / "fleet-example"


def run(argv: list[str]) -> tuple[int, str, str]:
    """``hcsim ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def children(pid: int | None = None) -> set[int]:
    """Every live descendant of ``pid`` (default: this process), from /proc."""
    pid = os.getpid() if pid is None else pid
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":                  # zombies are dead
            parent_of[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parent_of.items() if p in frontier} - found
        found |= frontier
    return found


class Snapshot:
    """The files of some directories, to compare after a command."""

    def __init__(self, *dirs: Path):
        self.dirs = [Path(d) for d in dirs]
        self.state = self.take()

    def take(self) -> dict[str, tuple]:
        state = {}
        for d in self.dirs:
            for p in d.iterdir():
                st = os.lstat(p)
                content = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
                target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
                state[str(p)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                 content, target)
        return state

    def assert_unchanged(self) -> None:
        now = self.take()
        new = sorted(set(now) - set(self.state))
        assert not new, f"files left behind: {new}"
        gone = sorted(set(self.state) - set(now))
        assert not gone, f"files removed: {gone}"
        changed = [p for p in now if now[p] != self.state[p]]
        assert not changed, f"files changed: {changed}"


def assert_error(code: int, out: str, err: str, *fragments: str, exit_code: int = 2) -> str:
    """Exit ``exit_code``, one ``hcsim: error:`` line, no traceback; the line."""
    assert code == exit_code, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = err.splitlines()
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith("hcsim: error: "), lines[0]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def assert_clean(code: int, out: str, err: str, allowed=(0, 2)) -> None:
    """A hostile input either works or is one clean error (never a traceback)."""
    assert code in allowed, (code, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    if code == 2:
        assert_error(code, out, err)


def check(argv: list, *dirs: Path, fragments: tuple[str, ...] = (),
          exit_code: int = 2) -> str:
    """Run ``argv`` expecting bad input; assert the whole contract; the error line."""
    before = children()
    snap = Snapshot(*dirs)
    code, out, err = run(argv)
    line = assert_error(code, out, err, *fragments, exit_code=exit_code)
    snap.assert_unchanged()
    assert children() <= before, "child process left"
    return line


def python() -> list[str]:
    return [sys.executable, "-m", "hcsim"]
