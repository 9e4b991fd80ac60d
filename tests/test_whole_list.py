"""The whole register list (DESIGN.md section 9, issue 11): other registers."""

from __future__ import annotations

import errno

import pytest

from hcsim.errors import InputError
from hcsim.frontends.cli import main
from hcsim.model import synthetic
from hcsim.model.history import dumps, load, loads
from hcsim.model.kvm import Kernel, KvmError
from hcsim.model.regs import KVM_REG_ARM64_SVE, KVM_REG_ARM_CORE, coproc_of
from hcsim.model.strategies import parse as parse_strategy

UPSTREAM = parse_strategy("upstream")
TCR2_EL1 = 0x603000000013C103


@pytest.fixture(scope="module")
def linux():
    return load("linux").with_registers("all")


def cpreg(history, kernel, features=None):
    """QEMU's cpreg list: every listed id except CORE and SVE."""
    cpu = Kernel(history, kernel, UPSTREAM).create_vm().create_vcpu().init(features=features)
    return [r for r in cpu.get_reg_list()
            if coproc_of(r) not in (KVM_REG_ARM_CORE, KVM_REG_ARM64_SVE)]


@pytest.mark.parametrize("kernel, count", [
    ("5.10.0-32-arm64", 237), ("v6.1", 167), ("v6.12", 184), ("v6.16", 182), ("v7.3", 182)])
def test_the_probe_lists_reproduce_qemus_cpreg_counts(linux, kernel, count):
    # FACTS.md 5: QEMU's cpreg list on the probed kernels, vCPU without a PMU
    # (5.10.0-32 is the probed Debian kernel: v5.10 with WORKAROUND_3 backported)
    assert len(cpreg(linux, kernel)) == count


def test_a_pmu_vcpu_lists_the_74_pmu_registers(linux):
    assert len(cpreg(linux, "v6.12", {"pmu"})) == 184 + 74
    assert len(cpreg(linux, "v7.3", {"pmu"})) == 182 + 75      # + PMMIR_EL1


def test_listed_other_registers_read_and_write_unlisted_ones_are_enoent(linux):
    cpu = Kernel(linux, "v6.12", UPSTREAM).create_vm().create_vcpu().init()
    assert TCR2_EL1 in cpu.get_reg_list()
    value = cpu.get_one_reg(TCR2_EL1)
    cpu.set_one_reg(TCR2_EL1, value)
    later = Kernel(linux, "v6.16", UPSTREAM).create_vm().create_vcpu().init()
    assert TCR2_EL1 not in later.get_reg_list()
    for call in (lambda: later.set_one_reg(TCR2_EL1, value), lambda: later.get_one_reg(TCR2_EL1)):
        with pytest.raises(KvmError) as exc:
            call()
        assert exc.value.errno == errno.ENOENT


def test_the_hypercall_view_lists_only_classes_0x14_and_0x16():
    h = load("linux")
    assert h.has_other
    hyp = h.with_registers("hypercall")
    cpu = Kernel(hyp, "v6.12", UPSTREAM).create_vm().create_vcpu().init()
    assert {coproc_of(r) for r in cpu.get_reg_list()} == {0x14, 0x16}


def test_a_history_without_register_lists_is_unchanged():
    h = synthetic.generate(releases=6, rate=1.0, seed=2)
    assert not h.has_other and not h.whole
    assert h.with_registers("all").other_at(0) == ()
    with pytest.raises(InputError, match="no register lists"):
        h.with_features({"pmu"})


def test_a_feature_set_the_history_lacks_is_bad_input(linux, capsys):
    with pytest.raises(InputError, match="no register lists for vCPU features"):
        linux.with_features({"sve"})
    assert main(["matrix", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu",
                 "--features", "sve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcsim: error:") and "{sve}" in err and len(err.splitlines()) == 1


def test_other_entries_round_trip_and_validate():
    text = """
releases = ["r0", "r1", "r2"]
[[other]]
id = "0x603000000013c103"
name = "TCR2_EL1"
introduced = "r0"
removed = "r2"
"""
    h = loads(text).with_registers("all")
    assert [h.other_at(r) for r in range(3)] == [(TCR2_EL1,), (TCR2_EL1,), ()]
    assert loads(dumps(h)).other == h.other
    for bad, what in [('id = "0x6030000000140000"', "not an other register"),
                      ('id = "TCR2"', "not a 0x KVM_REG_ARM64 id"),
                      ('id = "0x603000000013c103"\nremoved = "r0"', "not after"),
                      ('id = "0x603000000013c103"\nname = "TCR_EL1"', "but")]:
        with pytest.raises(InputError, match=what):
            loads(f'releases = ["r0", "r1"]\n[[other]]\n{bad}\nintroduced = "r0"\n')


def test_drift_rate_zero_is_todays_model_and_drift_is_seeded():
    plain = synthetic.generate(releases=20, rate=0.5, seed=4)
    assert plain.other is None
    drifted = synthetic.generate(releases=20, rate=0.5, seed=4, **synthetic.LINUX_DRIFT)
    assert drifted.services == plain.services
    assert drifted.other is not None
    again = synthetic.generate(releases=20, rate=0.5, seed=4, **synthetic.LINUX_DRIFT)
    assert dumps(again) == dumps(drifted)
    assert len(drifted.with_registers("all").other_at(0)) == 232
