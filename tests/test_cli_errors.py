"""Every bad-input path: one line ``hcsim: error: ...``, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hcsim.frontends import cli

GOOD = """
releases = ["r0", "r1"]
[[service]]
name = "PV_TIME"
space = "std-hyp"
introduced = "r0"
"""

BAD_HISTORIES = {
    "malformed": ("releases = [", "malformed TOML"),
    "no_releases": ("releases = []", "releases must be a non-empty list"),
    "dup_release": ('releases = ["a", "a"]', "duplicate release 'a'"),
    "unknown_release": (GOOD.replace('introduced = "r0"', 'introduced = "r9"'),
                        "service 'PV_TIME': introduced: unknown release 'r9'"),
    "unknown_registers_from": (GOOD.replace('releases = ["r0", "r1"]',
                                            'releases = ["r0", "r1"]\nregisters_from = "v9"'),
                               "registers_from: unknown release 'v9'"),
    "unknown_space": (GOOD.replace("std-hyp", "oem"), "unknown space 'oem'"),
    "dup_service": (GOOD + GOOD.split("\n", 2)[2], "service 'PV_TIME': duplicate service name"),
    "bad_id": (GOOD + '[[firmware]]\nname = "X"\nid = "0x1234"\nintroduced = "r0"\n',
               "firmware 'X': id 0x1234 is not a U64 KVM_REG_ARM_FW register id"),
    "reset_not_accepted": (GOOD + '[[firmware]]\nname = "X"\nid = "0x6030000000140000"\n'
                           'introduced = "r0"\nreset = "0x1"\naccepts = ["0x2"]\n',
                           "reset 0x1 is not among accepts"),
    "pin_twice": (GOOD.replace('introduced = "r0"', 'introduced = "r0"\n'
                               'register = "0x6030000000160001"\nbit = 0')
                  + '[[service]]\nname = "B"\nspace = "std-hyp"\nintroduced = "r1"\n'
                    'register = "0x6030000000160001"\nbit = 0\n',
                  "bit 0 is already pinned by 'PV_TIME'"),
    "unknown_key": (GOOD + "colour = 1\n", "unknown key 'colour'"),
}


def run(argv):
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, out, err, fragment):
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hcsim: error: "), err
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(BAD_HISTORIES))
def test_bad_history_is_one_line_exit_2_naming_file_and_entry(tmp_path, case):
    text, fragment = BAD_HISTORIES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    out_file = tmp_path / "out.csv"
    code, out, err = run(["matrix", "--history", str(path), "--strategy", "upstream",
                          "--vmm", "qemu", "--output", str(out_file)])
    assert_one_line_error(code, out, err, fragment)
    assert str(path) in err
    assert not out_file.exists()
    assert list(tmp_path.iterdir()) == [path]          # no temp file left either


@pytest.mark.parametrize("argv,fragment", [
    (["--strategy", "nope"], "unknown strategy 'nope'"),
    (["--strategy", "raz-wi:width=64"], "unknown parameter 'width'"),
    (["--strategy", "wide:width=100"], "width must be a power of two in 64..2048"),
    (["--strategy", "wide:width=4096"], "width must be in 64..2048"),
    (["--strategy", "wide:width=32"], "width must be in 64..2048"),
    (["--strategy", "raz-wi:ranges=0"], "ranges must be in 1..1024"),
    (["--strategy", "raz-wi:ranges=two"], "ranges must be an integer"),
    (["--strategy", "invalidate-on-write:scope=all"], "scope must be one of bitmaps, fw"),
    (["--strategy", "raz-wi:ranges"], "is not k=v"),
    (["--vmm", "kvmtool"], "unknown VMM 'kvmtool'"),
    (["--format", "yaml"], "unknown format 'yaml'"),
    (["--vcpus", "0"], "--vcpus: must be at least 1"),
    (["--vcpus", "-3"], "--vcpus: must be at least 1"),
    (["--config", "random:p=2"], "need 0 <= p <= 1"),
    (["--config", "off:NOPE"], "unknown service 'NOPE'"),
    (["--history", "linux", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_parameters_are_one_line_exit_2(tmp_path, argv, fragment):
    base = {"--history": "linux", "--strategy": "upstream", "--vmm": "qemu"}
    args = ["cost" if "--vcpus" in argv else "matrix"]
    given = dict(zip(argv[::2], argv[1::2]))
    for key, value in {**base, **given}.items():
        if key.startswith("--") and key != "--bogus":
            args += [key, value]
    if "--bogus" in argv:
        args.append("--bogus")
    if "--config" in given and args[0] == "cost":
        args[0] = "matrix"
    out_file = tmp_path / "out.txt"
    code, out, err = run([*args, "--output", str(out_file)])
    assert_one_line_error(code, out, err, fragment)
    assert not out_file.exists()


def test_missing_history_file(tmp_path):
    code, out, err = run(["matrix", "--history", str(tmp_path / "none.toml"),
                          "--strategy", "upstream", "--vmm", "qemu"])
    assert_one_line_error(code, out, err, "no such history file")


def test_unreadable_history_a_directory_or_binary(tmp_path):
    code, out, err = run(["cost", "--history", str(tmp_path), "--strategy", "upstream",
                          "--vmm", "qemu"])
    assert_one_line_error(code, out, err, "is a directory")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00releases")
    code, out, err = run(["cost", "--history", str(binary), "--strategy", "upstream",
                          "--vmm", "qemu"])
    assert code == 2 and err.startswith("hcsim: error: ") and len(err.splitlines()) == 1


def test_output_into_missing_directory(tmp_path):
    code, out, err = run(["cost", "--history", "linux", "--strategy", "upstream",
                          "--vmm", "qemu", "--output", str(tmp_path / "no" / "x.csv")])
    assert_one_line_error(code, out, err, "directory does not exist")


def test_good_output_file_is_written_whole(tmp_path):
    out_file = tmp_path / "cost.csv"
    code, out, err = run(["cost", "--history", "linux", "--strategy", "upstream",
                          "--vmm", "qemu", "--format", "csv", "--output", str(out_file)])
    assert code == 0 and out == "" and err == ""
    assert out_file.read_text().startswith("release,registers,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cost.csv"]


def test_the_installed_command_prints_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("hcsim")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "hcsim.frontends.cli"]
    proc = subprocess.run([*argv, "matrix", "--history", "linux", "--strategy",
                           "wide:width=3", "--vmm", "qemu"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_missing_command():
    code, out, err = run([])
    assert_one_line_error(code, out, err, "missing command")
