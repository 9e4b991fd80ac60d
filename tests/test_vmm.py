"""One test per pinned VMM rule (DESIGN.md section 3, FACTS.md section 5)."""

from __future__ import annotations

import pytest
from conftest import make

from hcsim.evaluation.measures import cost_at
from hcsim.evaluation.spec import boot, configured_values, migrate
from hcsim.model import regs
from hcsim.model.kvm import Kernel
from hcsim.model.strategies import parse
from hcsim.model.vmm import Refused
from hcsim.model.vmm import parse as vmm

TWO_SPACES = """
releases = ["old", "new"]
[[service]]
name = "PV_TIME"
space = "std-hyp"
introduced = "old"
[[service]]
name = "PTP"
space = "vendor-hyp"
introduced = "new"
default = "{default}"
"""


def h(default="on"):
    return make(TWO_SPACES.format(default=default))


def save(history, release, spec, policy):
    cpus = boot(Kernel(history, release, parse(spec)), 1)
    return vmm(policy).save(cpus)


def restore(history, release, spec, policy, stream):
    cpus = boot(Kernel(history, release, parse(spec)), 1)
    vmm(policy).restore(cpus, stream)
    return cpus[0]


def test_qemu_refuses_when_incoming_count_exceeds_its_own():
    hist = h("off")                                   # PTP bitmap is 0 on "new"
    stream = save(hist, "new", "upstream", "qemu")
    with pytest.raises(Refused, match="count 2 > 1"):
        restore(hist, "old", "upstream", "qemu", stream)


def test_qemu_tolerant_drops_unknown_zero_feature_register_before_count_check():
    hist = h("off")
    stream = save(hist, "new", "upstream", "qemu-tolerant")
    cpu = restore(hist, "old", "upstream", "qemu-tolerant", stream)
    assert cpu.vm.guest_view() == {"PV_TIME"}


def test_qemu_tolerant_still_refuses_an_unknown_register_that_is_not_zero():
    assert migrate(h("on"), parse("upstream"), vmm("qemu-tolerant"), 1, 0).outcome == "refused"


def test_qemu_fails_on_unknown_incoming_id_sorting_before_its_last_id():
    incoming = [[(regs.feat_reg(0), 0)]]              # STD_BMAP < STD_HYP_BMAP
    with pytest.raises(Refused, match="unknown KVM_REG_ARM_STD_BMAP"):
        restore(h(), "old", "upstream", "qemu", incoming)


def test_qemu_silently_drops_incoming_ids_after_its_last_id():
    incoming = [[(regs.feat_reg(5), 7)]]              # sorts after STD_HYP_BMAP
    cpu = restore(h(), "old", "upstream", "qemu", incoming)
    assert cpu.vm.guest_view() == {"PV_TIME"}


def test_qemu_keeps_reset_values_of_registers_absent_from_the_stream():
    # forward into a release with a new register: gained (DESIGN.md 3)
    m = migrate(h("on"), parse("upstream"), vmm("qemu"), 0, 1)
    assert (m.outcome, m.gained) == ("gained", {"PTP"})


def test_qemu_writes_back_its_whole_list_so_invalidation_cannot_help():
    iow = parse("invalidate-on-write")
    assert migrate(h("on"), iow, vmm("qemu"), 0, 1).outcome == "gained"
    assert migrate(h("on"), iow, vmm("firecracker"), 0, 1).outcome == "preserved"


def test_zero_unknown_writes_zero_to_feature_registers_absent_from_stream():
    m = migrate(h("on"), parse("upstream"), vmm("zero-unknown"), 0, 1)
    assert m.outcome == "preserved"


def test_zero_unknown_zeroes_whole_registers_even_when_source_had_none():
    hist = make(TWO_SPACES.format(default="on").replace(
        'releases = ["old", "new"]', 'releases = ["old", "new"]\nregisters_from = "new"'))
    m = migrate(hist, parse("upstream"), vmm("zero-unknown"), 0, 1)
    assert (m.outcome, m.lost) == ("lost", {"PV_TIME"})


def test_crosvm_never_saves_bitmaps():
    stream = save(h(), "new", "upstream", "crosvm")
    assert stream == [[]]
    hist = h("on")
    cpus = boot(Kernel(hist, 1, parse("upstream")), 1)
    cpus[0].set_one_reg(regs.feat_reg(1), 0)          # the guest had PV_TIME off
    assert all(not regs.is_feature(rid) for rid, _ in vmm("crosvm").save(cpus)[0])
    assert migrate(hist, parse("upstream"), vmm("crosvm"), 1, 0).outcome == "lost"


def test_firecracker_and_cloud_hypervisor_write_only_their_snapshot_in_order():
    m = migrate(h("on"), parse("upstream"), vmm("cloud-hypervisor"), 0, 1)
    assert (m.outcome, m.gained) == ("gained", {"PTP"})
    m = migrate(h("on"), parse("upstream"), vmm("firecracker"), 1, 0)
    assert (m.outcome, m.detail) == ("refused", "ENOENT on KVM_REG_ARM_VENDOR_HYP_BMAP")


@pytest.mark.parametrize("policy", ["qemu", "qemu-tolerant", "zero-unknown",
                                    "cloud-hypervisor"])
@pytest.mark.parametrize("spec", ["wide", "wide:width=128", "full-bitmap:width=2048"])
def test_widths_other_than_u32_u64_are_unsupported_by_qemu_and_cloud_hypervisor(policy, spec):
    m = migrate(h(), parse(spec), vmm(policy), 0, 0)
    assert m.outcome == "unsupported"
    assert "cannot handle" in m.detail


@pytest.mark.parametrize("spec", ["wide", "full-bitmap:width=2048"])
def test_firecracker_and_crosvm_handle_wide_registers(spec):
    for policy in ("firecracker", "crosvm"):
        assert migrate(h(), parse(spec), vmm(policy), 1, 1).outcome == "preserved"


def test_wire_cost_per_register_of_each_vmm():
    hist = h()
    upstream, wide = parse("upstream"), parse("wide:width=1024")
    per_reg = {"qemu": 16, "qemu-tolerant": 16, "zero-unknown": 16, "cloud-hypervisor": 48}
    for policy, size in per_reg.items():
        assert cost_at(hist, upstream, vmm(policy), 1).bytes_per_vcpu == 2 * size
    assert cost_at(hist, wide, vmm("firecracker"), 1).bytes_per_vcpu == 8 + 1024 // 8
    assert cost_at(hist, upstream, vmm("crosvm"), 1).registers == 0


def test_configuration_writes_every_feature_register_so_invalidation_keeps_the_rest():
    m = migrate(h("on"), parse("invalidate-on-write"), vmm("firecracker"), 1, 1,
                off=frozenset({"PTP"}))
    assert m.outcome == "preserved"
    cpus = boot(Kernel(h("on"), 1, parse("invalidate-on-write")), 1)
    vmm("qemu").configure(cpus, configured_values(cpus[0].vm.kernel, frozenset({"PTP"})))
    assert cpus[0].vm.guest_view() == {"PV_TIME"}


def test_a_setting_the_source_kernel_rejects_is_bad_input_not_a_crash(four):
    from hcsim.errors import InputError
    from hcsim.model.config import Setting
    bad = Setting(firmware=(("PSCI_VERSION", 0x10003),))   # four.toml accepts 0x2, 0x10000
    with pytest.raises(InputError, match="cannot configure a VM on r1: EINVAL on "
                                         "KVM_REG_ARM_PSCI_VERSION"):
        migrate(four, parse("upstream"), vmm("qemu"), 1, 2, off=bad)
