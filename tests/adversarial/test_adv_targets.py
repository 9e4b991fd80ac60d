"""Special output targets and full disks, for every command that writes a file.

A target that exists and is not a regular file (FIFO, directory, character
device), a symbolic link (to a file or dangling), or a path whose directory
is missing or is a file: refused before any work, one line, nothing
changed, nothing left.  An existing output keeps its mode (and, as root, its
owner).  A full disk or a file-size limit while writing: one line naming the
target, the previous output kept, no temporary file.
"""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
import time

import pytest
from hc_contract import FLEET, REPO, Snapshot, assert_error, check, python, run

FOUR = REPO / "tests" / "data" / "four.toml"
NOTEBOOK = REPO / "notebooks" / "03-save-restore-cost.ipynb"


def commands(target):
    """Every command that writes ``target`` (a name ending in .csv where needed)."""
    m = ["--history", FOUR, "--strategy", "upstream", "--vmm", "qemu"]
    fl = ["fleet", "--history", "linux", "--inventory", FLEET / "inventory.toml",
          "--plan", FLEET / "plan.toml", "--guests", "10", "--config", "default"]
    return {
        "strategies": ["strategies", "--output", target],
        "vmms": ["vmms", "--output", target],
        "generate": ["generate", "--releases", "5", "--output", target],
        "matrix": ["matrix", *m, "--output", target],
        "cost": ["cost", *m, "--output", target],
        "compare": ["compare", *m, "--output", target],
        "baseline": ["baseline", "--history", "linux", "--strategy", "upstream", "--vmm",
                     "qemu", "--releases", "v6.1,v6.6", "--output", target],
        "sweep": ["sweep", "--histories", "2", "--releases", "5", "--strategy", "upstream",
                  "--vmm", "qemu", "--jobs", "1", "--output", target],
        "fleet": [*fl, "--output", target],
        "fleet-timeline": [*fl, "--timeline", target],
        "bench": ["bench", "--quick", "--output", target],
        "what-if": ["what-if", "--history", FOUR, "--add-release", "r9", "--service",
                    "X:std-hyp", "--vmm", "qemu", "--output", target],
        "report": ["report", NOTEBOOK, "--output", target],
    }


COMMANDS = sorted(commands("x"))
KINDS = ["fifo", "directory", "symlink", "dangling", "loop", "chardev", "no-parent",
         "parent-is-file", "long-name"]


def make_target(tmp_path, kind):
    real = tmp_path / "real.csv"
    real.write_text("keep me\n")
    target = tmp_path / "out.csv"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "symlink":
        target.symlink_to(real)
    elif kind == "dangling":
        target.symlink_to(tmp_path / "nowhere.csv")
    elif kind == "loop":
        target.symlink_to(tmp_path / "other.csv")
        (tmp_path / "other.csv").symlink_to(target)
    elif kind == "chardev":
        try:
            os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))   # like /dev/null
        except PermissionError:
            pytest.skip("creating a device node needs root")
    elif kind == "no-parent":
        target = tmp_path / "missing" / "out.csv"
    elif kind == "parent-is-file":
        target = real / "out.csv"
    elif kind == "long-name":
        target = tmp_path / ("x" * 300 + ".csv")
    return target


FRAGMENTS = {"fifo": "not a regular file (a FIFO)", "directory": "is a directory",
             "symlink": "symbolic link", "dangling": "symbolic link", "loop": "symbolic link",
             "long-name": "File name too long",
             "chardev": "not a regular file (a character device)",
             "no-parent": "directory does not exist", "parent-is-file": "directory does not exist"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_special_target(tmp_path, command, kind):
    target = make_target(tmp_path, kind)
    started = time.monotonic()
    check(commands(target)[command], tmp_path, fragments=(str(target), FRAGMENTS[kind]))
    assert time.monotonic() - started < 10, "the output was checked only after the work"


def test_two_outputs_on_one_file(tmp_path):
    out = tmp_path / "same.csv"
    check([*commands(out)["fleet"], "--timeline", out], tmp_path,
          fragments=("given for two outputs",))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_directory(tmp_path):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        check(["vmms", "--output", tmp_path / "ro" / "out.txt"], tmp_path,
              fragments=("Permission denied",))
    finally:
        (tmp_path / "ro").chmod(0o700)


@pytest.mark.parametrize("command", ["strategies", "generate", "matrix", "sweep", "fleet"])
def test_existing_output_keeps_its_mode(tmp_path, command):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    target.chmod(0o600)
    code, out, err = run(commands(target)[command])
    assert code == 0, err
    assert target.read_text() != "old\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_existing_output_keeps_its_owner(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    os.chown(target, 12345, 12345)
    code, out, err = run(["vmms", "--output", target])
    assert code == 0, err
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (12345, 12345)


def _limit_file_size(limit):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("argv", [
    ["generate", "--releases", "3000", "--rate", "1"],
    ["sweep", "--histories", "30", "--releases", "20", "--strategy", "upstream", "--vmm",
     "qemu", "--jobs", "1"],
])
def test_file_size_limit_while_writing(tmp_path, argv):
    """EFBIG (what a full disk looks like to the writer, ENOSPC): one line, nothing left."""
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    snap = Snapshot(tmp_path)
    proc = subprocess.run([*python(), *argv, "--output", str(target)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_file_size(4096))
    assert_error(proc.returncode, proc.stdout, proc.stderr, str(target), "File too large")
    snap.assert_unchanged()


def test_full_stdout():
    """stdout on /dev/full (ENOSPC): one line, exit 2, no second error at exit."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*python(), "strategies"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert_error(proc.returncode, "", proc.stderr, "No space left on device")


def test_closed_stdout_pipe():
    """A reader that goes away (``| head``): exit 0, nothing on stderr."""
    proc = subprocess.Popen([*python(), "generate", "--releases", "5000", "--rate", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err == "", err


def test_python_dash_m():
    proc = subprocess.run([*python(), "vmms", "--format", "csv"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("name,"), proc.stderr
    assert sys.executable
