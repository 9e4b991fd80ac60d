"""The hardened input and output layer (hcsim.files, hcsim.limits): unit tests.

The command-line contract under hostile inputs, special targets and signals
is tested end to end in ``tests/adversarial/``.
"""

from __future__ import annotations

import errno
import os
import stat

import pytest

from hcsim import files, limits
from hcsim.errors import InputError
from hcsim.model import history as history_mod
from hcsim.model import kvm

GOOD = 'releases = ["r0", "r1"]\n[[service]]\nname = "A"\nspace = "std-hyp"\nintroduced = "r0"\n'


# -- inputs ----------------------------------------------------------------------

def test_reads_a_regular_file(tmp_path):
    p = tmp_path / "h.toml"
    p.write_text(GOOD)
    assert files.read_text(p, "history") == GOOD
    assert files.load_toml(p, "history")["releases"] == ["r0", "r1"]


@pytest.mark.parametrize("kind", ["fifo", "dir", "chardev"])
def test_refuses_what_is_not_a_regular_file(tmp_path, kind):
    p = tmp_path / "x"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dir":
        p.mkdir()
    else:
        p = "/dev/zero"               # endless: must be refused before reading
    with pytest.raises(InputError) as e:
        files.read_bytes(p, "history")
    assert str(e.value).startswith(f"{p}: ")
    assert "directory" in str(e.value) or "not a regular file" in str(e.value)


def test_size_cap(tmp_path):
    p = tmp_path / "big.toml"
    p.write_bytes(b"#" * 101)
    with pytest.raises(InputError, match="too large"):
        files.read_bytes(p, "history", limit=100)
    assert files.read_bytes(p, "history", limit=101) == b"#" * 101


@pytest.mark.parametrize("make, err", [
    (lambda d: d / "missing", "no such history file"),
    (lambda d: d / ("n" * 300), os.strerror(errno.ENAMETOOLONG)),
])
def test_os_errors_are_one_line(tmp_path, make, err):
    with pytest.raises(InputError, match=err):
        files.read_bytes(make(tmp_path), "history")


def test_io_error_while_reading_is_one_line(tmp_path, monkeypatch):
    p = tmp_path / "h.toml"
    p.write_text(GOOD)

    def broken(fd, n):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "read", broken)
    with pytest.raises(InputError, match=f"{p}: Input/output error"):
        files.read_bytes(p)


def test_scheduler_addresses():
    from hcsim.analyses.sweep import LOCAL, check_scheduler
    for good in ("tls://sched.example:8786", "tcp://10.0.0.1:8786", "127.0.0.1:8786",
                 "[::1]:8786", "tls://[fe80::1]:8786", LOCAL):
        assert check_scheduler(good) == good
    for bad in ("", "sched", "http://h:80", "tcp://h", "tcp://h:0", "tcp://h:65536",
                "--jobs", "h:80 ; rm", "/tmp/sock"):
        with pytest.raises(InputError, match="not an address"):
            check_scheduler(bad)


def test_symlink_loop_is_one_line(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match=os.strerror(errno.ELOOP)):
        files.read_bytes(tmp_path / "a")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_is_one_line(tmp_path):
    p = tmp_path / "h.toml"
    p.write_text(GOOD)
    p.chmod(0)
    with pytest.raises(InputError, match=os.strerror(errno.EACCES)):
        files.read_bytes(p)


@pytest.mark.parametrize("text", [
    "a = " + "[" * 10_000 + "]" * 10_000,
    "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
    "[" + ".".join(["t"] * 5_000) + "]\nx = 1",          # dotted header: counted after parsing
    ".".join(["k"] * 5_000) + " = 1",
])
def test_deep_toml_is_one_line(text):
    with pytest.raises(InputError, match="nested more than 32 levels"):
        files.loads_toml(text, "deep.toml")


def test_depth_just_under_the_cap_parses():
    doc = files.loads_toml("a = " + "[" * 31 + "]" * 31, "ok.toml")
    assert files.depth(doc) == 32       # the top-level table counts one


def test_brackets_in_strings_and_comments_do_not_count():
    text = 'a = "' + "[" * 100 + '"\n# ' + "{" * 100 + "\nb = '''" + "[" * 100 + "'''\n"
    assert files.loads_toml(text, "s.toml")["a"] == "[" * 100


@pytest.mark.parametrize("text", ["[" * 10_000 + "]" * 10_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_deep_json_is_one_line(text):
    with pytest.raises(InputError, match="nested more than 32 levels"):
        files.loads_json(text, "deep.json")


# -- outputs ---------------------------------------------------------------------

def test_atomic_file_keeps_mode(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    out.chmod(0o600)
    files.emit("new", str(out))
    assert out.read_text() == "new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_new_file_gets_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        files.emit("x", str(tmp_path / "new.txt"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("kind", ["fifo", "dir", "symlink", "dangling"])
def test_refuses_special_targets(tmp_path, kind):
    real = tmp_path / "real.txt"
    real.write_text("keep")
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "dir":
        out.mkdir()
    elif kind == "symlink":
        out.symlink_to(real)
    else:
        out.symlink_to(tmp_path / "nowhere")
    for attempt in (lambda: files.check_output(str(out)), lambda: files.emit("x", str(out))):
        with pytest.raises(InputError):
            attempt()
    assert real.read_text() == "keep"
    assert os.path.lexists(out) and (kind != "fifo" or stat.S_ISFIFO(os.lstat(out).st_mode))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["real.txt", "out"])


def test_failed_write_removes_the_temp_file_and_keeps_the_old(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(files.Terminated):
        with files.atomic_file(str(out)) as fh:
            fh.write("partial")
            raise files.Terminated()
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert not files._TEMPS


def test_write_error_names_the_target(tmp_path, monkeypatch):
    out = tmp_path / "out.txt"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InputError, match=f"{out}: No space left on device"):
        files.emit("x", str(out))
    assert list(tmp_path.iterdir()) == []


def test_two_outputs_on_one_file_are_refused(tmp_path):
    out = str(tmp_path / "a.csv")
    with pytest.raises(InputError, match="two outputs"):
        files.check_outputs(out, None, out)


# -- values and caps -----------------------------------------------------------------

def test_vcpu_cap_is_kvm_max_vcpus():
    assert limits.VCPUS == kvm.KVM_MAX_VCPUS == 512


@pytest.mark.parametrize("extra, fragment", [
    ('[[firmware]]\nname = "F"\nid = "0x6030000000140000"\nintroduced = "r0"\n'
     'reset = "0x10000000000000000"\naccepts = ["0x10000000000000000"]\n', "does not fit in 64 bits"),
    ('[[firmware]]\nname = "F"\nid = 18446744073709551616\nintroduced = "r0"\n',
     "does not fit in 64 bits"),
    ('[[service]]\nname = "B"\nspace = "std-hyp"\nfunctions = 65536\nintroduced = "r1"\n',
     "space 'std-hyp' overflows"),
    ('[[service]]\nname = "B\\u0007"\nspace = "std"\nintroduced = "r1"\n', "control character"),
    ('[[stable]]\nname = "s"\nbase = "r0"\nbackports = [["x"]]\n', "backports must be a list"),
    ('[[firmware]]\nname = "F"\nid = "0x6030000000140000"\nintroduced = "r0"\n'
     '[[stable]]\nname = "s"\nbase = "r0"\nbackport_changes = [{name = ["F"], release = "r1"}]\n',
     "name must be a non-empty string"),
    ('host = ["max"]\n', "host must be a string"),
])
def test_history_values(extra, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        history_mod.loads(GOOD.replace("[[service]]", extra + "[[service]]", 1)
                          if extra.startswith(("host",)) else GOOD + extra, "h.toml")


def test_empty_history_name_is_refused():
    with pytest.raises(InputError, match="name must be a non-empty string"):
        history_mod.loads('name = ""\n' + GOOD, "h.toml")


def test_dumps_escapes_control_characters():
    h = history_mod.loads(GOOD, "h.toml")
    import dataclasses
    odd = dataclasses.replace(h, source="line\nbreak\x01 and \"quotes\" \\")
    again = history_mod.loads(history_mod.dumps(odd), "again.toml")
    assert again.source == odd.source


def test_every_cap_is_in_help_and_readme(capsys):
    from pathlib import Path

    from hcsim.frontends import cli
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    limits_section = readme.split("## Limits", 1)[1].split("\n## ", 1)[0]
    for what, cap, _ in limits.TABLE:
        assert what in text
        if cap in (limits.U64_MAX, limits.SEED_MAX):
            continue
        shown = "16 MiB" if cap == limits.FILE_BYTES else f"{cap:,}"
        assert shown in limits_section, (what, shown)
