"""The fleet baseline (hcsim.baseline) and the Setting it is written with."""

from __future__ import annotations

import pytest

from hcsim import measures, strategies
from hcsim import vmm as vmm_mod
from hcsim.config import Setting
from hcsim.errors import InputError
from hcsim.kvm import Kernel

UPSTREAM = strategies.parse("upstream")


# -- Setting: the configuration extension -------------------------------------------

@pytest.mark.parametrize("spec", ["upstream", "raz-wi", "full-bitmap"])
def test_setting_with_only_off_writes_what_the_plain_config_writes(linux, spec):
    strategy = strategies.parse(spec)
    off = frozenset({"PTP", "TRNG_V1_0"})
    for rel in range(len(linux.releases)):
        kernel = Kernel(linux, rel, strategy)
        assert measures.configured_values(kernel, Setting(off=off)) == \
            measures.configured_values(kernel, off)


def test_setting_turns_an_opt_in_service_on(linux):
    v615 = linux.index("v6.15")
    got = measures.migrate(linux, UPSTREAM, vmm_mod.parse("qemu"), v615, v615,
                           Setting(on=frozenset({"DISCOVER_IMPL_VER"})))
    assert got.outcome == "preserved"
    cpus = measures.boot(Kernel(linux, v615, UPSTREAM), 1)
    vmm_mod.parse("qemu").configure(cpus, measures.configured_values(
        cpus[0].vm.kernel, Setting(on=frozenset({"DISCOVER_IMPL_VER"}))))
    # fw-pseudo-registers.rst: VENDOR_HYP_BMAP_2 bit 0 is DISCOVER_IMPL_VER.
    assert cpus[0].get_one_reg(0x6030000000160003) == 0x1
    assert "DISCOVER_IMPL_VER" in cpus[0].vm.guest_view()


def test_setting_writes_psci_version_so_v615_can_go_back_to_v612(linux):
    # v6.13+ resets PSCI_VERSION to 1.3 (0x10003); v6.12 accepts up to 1.1.
    tolerant = vmm_mod.parse("qemu-tolerant")
    src, dst = linux.index("v6.15"), linux.index("v6.12")
    plain = measures.migrate(linux, UPSTREAM, tolerant, src, dst)
    assert plain.outcome == "refused" and "PSCI_VERSION" in plain.detail
    pinned = measures.migrate(linux, UPSTREAM, tolerant, src, dst,
                              Setting(firmware=(("PSCI_VERSION", 0x10001),)))
    assert pinned.outcome == "preserved"


def test_crosvm_can_write_firmware_values_but_not_bitmaps(linux):
    kernel = Kernel(linux, "v6.15", UPSTREAM)
    cpus = measures.boot(kernel, 1)
    values = measures.configured_values(kernel, Setting(off=frozenset({"PTP"}),
                                                        firmware=(("PSCI_VERSION", 0x10000),)))
    vmm_mod.parse("crosvm").configure(cpus, values)
    assert cpus[0].get_one_reg(0x6030000000140000) == 0x10000
    assert "PTP" in cpus[0].vm.guest_view()


def test_setting_rejects_a_service_both_on_and_off():
    with pytest.raises(InputError, match="both on and off"):
        Setting(off=frozenset({"PTP"}), on=frozenset({"PTP"}))
