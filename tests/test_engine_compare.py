"""``hcsim compare`` prints the same scorecard with the engine as with the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcsim.frontends import cli

FOUR = str(Path(__file__).parent / "data" / "four.toml")
#: Every strategy; on Linux full-bitmap at 2048-bit width (the spec needs
#: ~25 s per VMM for the 2048 registers of the default width; the
#: differential tests cover that width on a sample of Linux pairs).
LINUX_STRATEGIES = ["upstream", "invalidate-on-write", "invalidate-on-write:scope=fw",
                    "raz-wi", "wide", "full-bitmap:width=2048", "raz-einval"]


def scorecard(capsys, *argv: str) -> str:
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("vmm", ["qemu", "qemu-tolerant", "firecracker", "crosvm"])
def test_linux_scorecard_is_the_same_with_either_engine(capsys, vmm):
    # the hypercall view: the spec over the whole list costs ~5 s per strategy
    args = ["compare", "--history", "linux", "--registers", "hypercall", "--vmm", vmm]
    for s in LINUX_STRATEGIES:
        args += ["--strategy", s]
    vector = scorecard(capsys, *args)
    assert vector == scorecard(capsys, *args, "--engine", "scalar")
    assert "upstream" in vector and "raz-einval" in vector


def test_linux_default_scorecard_is_the_same_with_either_engine(capsys):
    """The README's scorecard: every default strategy (full-bitmap: 2048 registers)."""
    args = ["compare", "--history", "linux", "--registers", "hypercall", "--vmm", "qemu"]
    assert scorecard(capsys, *args) == scorecard(capsys, *args, "--engine", "scalar")


@pytest.mark.parametrize("vmm", ["qemu", "qemu-compat", "firecracker"])
def test_linux_whole_list_scorecard_is_the_same_with_either_engine(capsys, vmm):
    """The whole register list (the default view): drift and blame."""
    args = ["compare", "--history", "linux", "--vmm", vmm, "--format", "csv",
            "--strategy", "upstream", "--strategy", "raz-einval"]
    vector = scorecard(capsys, *args)
    assert vector == scorecard(capsys, *args, "--engine", "scalar")
    assert "fwd_refused_drift" in vector


@pytest.mark.parametrize("fmt", ["text", "csv", "json"])
@pytest.mark.parametrize("vmm", ["qemu", "zero-unknown", "cloud-hypervisor"])
def test_four_scorecard_is_the_same_with_either_engine(capsys, vmm, fmt):
    """Every default strategy, two random configurations."""
    args = ["compare", "--history", FOUR, "--vmm", vmm, "--format", fmt,
            "--config", "random:p=0.5,seed=3,n=2"]
    assert scorecard(capsys, *args) == scorecard(capsys, *args, "--engine", "scalar")


def test_engine_option_is_checked(capsys):
    assert cli.main(["compare", "--history", FOUR, "--vmm", "qemu", "--engine", "fast"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_strict_engine_refuses_what_it_does_not_model_in_one_line(capsys):
    argv = ["matrix", "--history", FOUR, "--strategy", "upstream", "--vmm", "qemu",
            "--vcpus", "2"]
    assert cli.main([*argv, "--engine", "strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hcsim: error: the engine cannot evaluate")
    assert "one vCPU, not 2" in err


def test_auto_engine_says_when_the_spec_stood_in(capsys):
    argv = ["matrix", "--history", FOUR, "--strategy", "upstream", "--vmm", "qemu",
            "--vcpus", "2", "--format", "csv"]
    assert cli.main(argv) == 0
    auto = capsys.readouterr()
    assert auto.err.startswith("hcsim: note: upstream under qemu: evaluated by the scalar spec")
    assert cli.main([*argv, "--engine", "scalar"]) == 0
    assert capsys.readouterr() == (auto.out, "")
