"""The public API of ``hcsim/__init__.py``: what the notebooks and users call."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hcsim
from hcsim.frontends import cli, tables

FOUR = str(Path(__file__).parent / "data" / "four.toml")


def compare_csv(capsys, *argv: str) -> str:
    assert cli.main(["compare", *argv, "--format", "csv"]) == 0
    return capsys.readouterr().out


def as_csv(card: pd.DataFrame) -> str:
    rows = [{k: None if v is pd.NA else v for k, v in row.items()}
            for row in card.astype(object).to_dict("records")]
    return tables.to_csv(tuple(card.columns), rows)


@pytest.mark.parametrize("vmm", ["qemu", "firecracker", "crosvm"])
def test_scorecard_equals_compare_csv_cell_for_cell(capsys, linux_whole, vmm):
    card = hcsim.scorecard(linux_whole, vmm=vmm)
    assert as_csv(card) == compare_csv(capsys, "--history", "linux", "--vmm", vmm)


def test_scorecard_since_and_configs_equal_compare(capsys):
    h = hcsim.load(FOUR)
    card = hcsim.scorecard(h, "zero-unknown", ["upstream", "wide"], since="r1",
                           configs="random:p=0.5,seed=3,n=2")
    assert as_csv(card) == compare_csv(capsys, "--history", FOUR, "--vmm", "zero-unknown",
                                       "--strategy", "upstream", "--strategy", "wide",
                                       "--since", "r1", "--config", "random:p=0.5,seed=3,n=2")


def test_unsupported_cost_is_missing_not_a_number(linux):
    card = hcsim.scorecard(linux, "qemu", ["wide"])
    assert card.loc[0, "bytes_per_vcpu"] is pd.NA


def test_evaluate_takes_names_and_says_which_backend_ran(linux):
    auto = hcsim.evaluate(linux, "upstream", "qemu")
    spec = hcsim.evaluate(linux, "upstream", "qemu", backend="spec")
    assert (auto.backend, auto.reason, spec.backend) == ("engine", "", "spec")
    assert (auto.codes == spec.codes).all()
    m = auto.migration(linux.index("v6.15"), linux.index("v6.14"))
    assert m.cause == spec.migration(linux.index("v6.15"), linux.index("v6.14")).cause
    assert (m.cause.kind, m.cause.sent, m.cause.ours) == ("count", 8, 7)


def test_evaluate_rejects_an_unknown_backend(linux):
    with pytest.raises(hcsim.InputError, match="unknown backend"):
        hcsim.evaluate(linux, "upstream", "qemu", backend="gpu")


def test_migrate_with_trace_gives_the_ioctls_that_ended_it(linux):
    m, calls = hcsim.migrate(linux, "upstream", "qemu", "v6.13", "v6.12", trace=True)
    assert m.cause == hcsim.Cause("errno", 0x6030000000140000, "KVM_REG_ARM_PSCI_VERSION",
                                  errno="EINVAL", blame="hypercall")
    assert calls[-1].text() == ("v6.12 vcpu0: ioctl(KVM_SET_ONE_REG, PSCI_VERSION = 0x10003)"
                                " = -1 EINVAL")
    assert hcsim.migrate(linux, "upstream", "qemu", "v6.13", "v6.12") == m


def test_migrate_takes_a_configuration(linux):
    m = hcsim.migrate(linux, "upstream", "qemu", "v5.19", "v6.15",
                      config=frozenset({"PTP"}))
    assert "PTP" not in m.gained and m.outcome != "refused"


def test_cost_counts_only_feature_registers_when_asked(linux):
    whole = hcsim.cost(linux, "upstream", "crosvm")[-1]
    feature = hcsim.cost(linux, "upstream", "crosvm", feature_only=True)[-1]
    assert feature.registers == 0 < whole.registers        # crosvm never saves bitmaps


def test_baseline_and_sweep_wrap_the_analyses(linux):
    b = hcsim.baseline(linux, "upstream", "qemu-tolerant", "v6.1,v6.12")
    assert b.pairs
    df = hcsim.sweep(2, releases=5, strategies=["upstream"], vmms=["qemu"], jobs=1)
    assert list(df["seed"]) == [0, 1]


def test_the_readme_one_liner_prints_the_scorecard():
    code = "import hcsim; print(hcsim.scorecard(hcsim.load('linux'), vmm='qemu'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[1].split()[:2] == ["0", "upstream"]
    assert "[6 rows x 25 columns]" in out


def test_the_docstring_examples_run():
    result = doctest.testmod(hcsim, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
