"""One test per pinned rule of DESIGN.md section 2 (the scalar spec)."""

from __future__ import annotations

import errno

import pytest
from conftest import make

from hcsim.evaluation.spec import boot
from hcsim.model import regs
from hcsim.model.kvm import Kernel, KvmError
from hcsim.model.strategies import parse

STD, STD_HYP, VENDOR = (regs.feat_reg(i) for i in range(3))
PSCI = regs.fw_reg(0)

SMALL = """
releases = ["a", "b", "c"]
registers_from = "b"
[[service]]
name = "PV_TIME"
space = "std-hyp"
functions = 2
introduced = "a"
[[service]]
name = "LOCK"
space = "std-hyp"
introduced = "c"
[[service]]
name = "OPT"
space = "vendor-hyp"
introduced = "b"
default = "off"
[[firmware]]
name = "PSCI_VERSION"
id = "0x6030000000140000"
introduced = "a"
reset = "0x10000"
accepts = ["0x2", "0x10000"]
changes = [{ release = "c", reset = "0x10001", accepts = ["0x2", "0x10000", "0x10001"] }]
[[firmware]]
name = "WORKAROUND"
id = "0x6030000000140001"
introduced = "a"
on_write = "check"
reset = "0x1"
accepts = ["0x0", "0x1"]
"""


@pytest.fixture(scope="module")
def small():
    return make(SMALL)


def vcpu(history, release, spec="upstream", n=1):
    return boot(Kernel(history, release, parse(spec)), n)


def errno_of(call, *args):
    with pytest.raises(KvmError) as exc:
        call(*args)
    return exc.value.errno


def test_reg_list_has_firmware_then_bitmaps_from_registers_from(small):
    assert vcpu(small, "a")[0].get_reg_list() == [PSCI, regs.fw_reg(1)]
    assert vcpu(small, "b")[0].get_reg_list() == [PSCI, regs.fw_reg(1), STD_HYP, VENDOR]


def test_upstream_register_listed_from_release_of_first_service_in_space(small):
    # std has no service: KVM_REG_ARM_STD_BMAP is never listed.
    assert STD not in vcpu(small, "c")[0].get_reg_list()


def test_unknown_id_is_enoent(small):
    cpu = vcpu(small, "b")[0]
    assert errno_of(cpu.get_one_reg, STD) == errno.ENOENT
    assert errno_of(cpu.set_one_reg, STD, 0) == errno.ENOENT


def test_known_index_with_wrong_size_is_enoent(small):
    cpu = vcpu(small, "b")[0]
    for width in (32, 128):
        assert errno_of(cpu.set_one_reg, regs.feat_reg(1, width), 1) == errno.ENOENT
        assert errno_of(cpu.get_one_reg, regs.feat_reg(1, width)) == errno.ENOENT


def test_reset_value_has_default_on_bits_and_opt_in_off(small):
    cpu = vcpu(small, "c")[0]
    assert cpu.get_one_reg(STD_HYP) == 0b11          # PV_TIME, LOCK
    assert cpu.get_one_reg(VENDOR) == 0               # OPT is opt-in
    cpu.set_one_reg(VENDOR, 1)                        # and can be opted into
    assert "OPT" in cpu.vm.guest_view()


def test_unknown_bit_is_einval_and_value_unchanged(small):
    cpu = vcpu(small, "b")[0]
    assert errno_of(cpu.set_one_reg, STD_HYP, 0b11) == errno.EINVAL  # LOCK not on b
    assert cpu.get_one_reg(STD_HYP) == 0b01


def test_einval_is_checked_before_the_has_run_lock(small):
    cpu = vcpu(small, "b")[0]
    cpu.run()
    assert errno_of(cpu.set_one_reg, STD_HYP, 0b11) == errno.EINVAL


def test_after_run_a_different_value_is_ebusy_and_same_value_succeeds(small):
    cpu = vcpu(small, "b")[0]
    cpu.run()
    assert errno_of(cpu.set_one_reg, STD_HYP, 0) == errno.EBUSY
    cpu.set_one_reg(STD_HYP, 1)
    assert cpu.get_one_reg(STD_HYP) == 1


def test_bitmaps_are_per_vm_writes_seen_and_runs_locking_for_all_vcpus(small):
    a, b = vcpu(small, "b", n=2)
    a.set_one_reg(STD_HYP, 0)
    assert b.get_one_reg(STD_HYP) == 0
    later = a.vm.create_vcpu().init()
    assert later.get_one_reg(STD_HYP) == 0
    b.run()
    assert errno_of(a.set_one_reg, STD_HYP, 1) == errno.EBUSY


def test_immediate_exit_run_locks_but_run_of_uninitialised_vcpu_does_not(small):
    vm = Kernel(small, "b", parse("upstream")).create_vm()
    uninit, cpu = vm.create_vcpu(), vm.create_vcpu().init()
    assert errno_of(uninit.run) == errno.ENOEXEC
    cpu.set_one_reg(STD_HYP, 0)                       # still unlocked
    assert errno_of(cpu.run, True) == errno.EINTR
    assert errno_of(cpu.set_one_reg, STD_HYP, 1) == errno.EBUSY
    cpu.init()                                        # re-init does not unlock
    assert errno_of(cpu.set_one_reg, STD_HYP, 1) == errno.EBUSY


def test_uninitialised_vcpu_is_enoexec(small):
    vm = Kernel(small, "b", parse("upstream")).create_vm()
    cpu = vm.create_vcpu()
    assert errno_of(cpu.get_one_reg, STD_HYP) == errno.ENOEXEC
    assert errno_of(cpu.set_one_reg, STD_HYP, 0) == errno.ENOEXEC
    assert errno_of(cpu.get_reg_list) == errno.ENOEXEC


def test_null_address_set_copies_before_looking_up_the_id(small):
    cpu = vcpu(small, "b")[0]
    assert errno_of(cpu.get_one_reg, STD, True) == errno.ENOENT     # nonexistent
    assert errno_of(cpu.set_one_reg, STD, 0, True) == errno.EFAULT  # copied first
    assert errno_of(cpu.get_one_reg, STD_HYP, True) == errno.EFAULT


def test_firmware_store_accepts_only_listed_values_and_is_never_locked(small):
    cpu = vcpu(small, "c")[0]
    assert cpu.get_one_reg(PSCI) == 0x10001
    assert errno_of(cpu.set_one_reg, PSCI, 0x10002) == errno.EINVAL
    cpu.run()
    cpu.set_one_reg(PSCI, 0x2)
    assert cpu.get_one_reg(PSCI) == 0x2


def test_firmware_check_validates_but_does_not_store(small):
    cpu = vcpu(small, "b")[0]
    cpu.set_one_reg(regs.fw_reg(1), 0)
    assert cpu.get_one_reg(regs.fw_reg(1)) == 1
    assert errno_of(cpu.set_one_reg, regs.fw_reg(1), 2) == errno.EINVAL


def test_raz_wi_unassigned_bits_read_zero_and_ignore_writes(small):
    cpu = vcpu(small, "b", "raz-wi:ranges=2")[0]
    first = regs.feat_reg(0)
    assert cpu.get_reg_list()[-2:] == [first, regs.feat_reg(1)]
    assert cpu.get_one_reg(regs.feat_reg(1)) == 0
    # PV_TIME bit 0, OPT bit 1 (opt-in), LOCK would be bit 2 (not on b).
    cpu.set_one_reg(first, 0xFFFF_FFFF_FFFF_FFFF)
    assert cpu.get_one_reg(first) == 0b11
    cpu.set_one_reg(regs.feat_reg(1), 0xFF)
    assert cpu.get_one_reg(regs.feat_reg(1)) == 0


def test_raz_einval_rejects_ones_in_unassigned_bits_but_takes_zeros(small):
    cpu = vcpu(small, "b", "raz-einval:ranges=2")[0]
    assert errno_of(cpu.set_one_reg, regs.feat_reg(0), 0b111) == errno.EINVAL
    cpu.set_one_reg(regs.feat_reg(1), 0)
    assert errno_of(cpu.set_one_reg, regs.feat_reg(1), 1) == errno.EINVAL


def test_invalidate_on_write_bitmaps_scope_clears_on_first_bitmap_write(small):
    cpu = vcpu(small, "c", "invalidate-on-write")[0]
    cpu.set_one_reg(PSCI, 0x10000)                   # firmware: no invalidation
    assert cpu.get_one_reg(STD_HYP) == 0b11
    cpu.set_one_reg(VENDOR, 1)                        # first bitmap write
    assert cpu.get_one_reg(STD_HYP) == 0
    cpu.set_one_reg(STD_HYP, 0b01)                    # later writes stick
    assert cpu.get_one_reg(VENDOR) == 1
    assert cpu.vm.guest_view() == {"PV_TIME", "OPT"}


def test_invalidate_on_write_fw_scope_clears_on_any_firmware_write(small):
    cpu = vcpu(small, "c", "invalidate-on-write:scope=fw")[0]
    cpu.set_one_reg(regs.fw_reg(1), 1)                # even a check-only write
    assert cpu.get_one_reg(STD_HYP) == 0
    assert cpu.vm.guest_view() == frozenset()


def test_invalidate_on_write_failed_write_does_not_invalidate(small):
    cpu = vcpu(small, "b", "invalidate-on-write")[0]
    assert errno_of(cpu.set_one_reg, STD_HYP, 0b111) == errno.EINVAL
    assert cpu.get_one_reg(STD_HYP) == 0b01


def overflow_history(n: int) -> str:
    services = "".join(
        f'[[service]]\nname = "S{k}"\nspace = "std-hyp"\nintroduced = "{"b" if k < 64 else "c"}"\n'
        for k in range(n))
    return f'releases = ["a", "b", "c"]\nregisters_from = "a"\n{services}'


def test_raz_wi_overflow_register_appears_only_when_needed_with_upstream_semantics():
    h = make(overflow_history(66))
    assert vcpu(h, "b", "raz-wi:ranges=1")[0].get_reg_list() == [regs.feat_reg(0)]
    cpu = vcpu(h, "c", "raz-wi:ranges=1")[0]
    assert cpu.get_reg_list() == [regs.feat_reg(0), regs.feat_reg(1)]
    assert cpu.get_one_reg(regs.feat_reg(1)) == 0b11
    assert errno_of(cpu.set_one_reg, regs.feat_reg(1), 0b111) == errno.EINVAL
    assert parse("raz-wi:ranges=1").layout(h).exhaustion() == 2


def test_upstream_full_register_continues_at_index_3():
    h = make(overflow_history(66))
    cpu = vcpu(h, "c")[0]
    assert cpu.get_reg_list() == [STD_HYP, regs.feat_reg(3)]
    assert cpu.get_one_reg(regs.feat_reg(3)) == 0b11


def test_pinned_register_and_bit_are_honoured(linux):
    cpu = boot(Kernel(linux, "v6.15", parse("upstream")), 1)[0]
    bmap2 = 0x6030000000160003
    assert cpu.get_one_reg(bmap2) == 0                # opt-in
    cpu.set_one_reg(bmap2, 0b10)
    assert "DISCOVER_IMPL_CPUS" in cpu.vm.guest_view()
    assert "DISCOVER_IMPL_VER" not in cpu.vm.guest_view()


def test_full_bitmap_needs_every_function_bit_and_does_not_cover_std(small):
    h = make(SMALL.replace('name = "LOCK"\nspace = "std-hyp"', 'name = "LOCK"\nspace = "std"'))
    cpu = vcpu(h, "c", "full-bitmap")[0]
    assert len(cpu.get_reg_list()) == 2 + 2048
    first = regs.feat_reg(0)
    assert cpu.get_one_reg(first) == 0b11             # PV_TIME: two function bits
    cpu.set_one_reg(first, 0b01)                      # one of its functions off
    assert "PV_TIME" not in cpu.vm.guest_view()
    assert "LOCK" in cpu.vm.guest_view()              # std: always visible
    cpu.set_one_reg(first, 0xF0)                      # unimplemented bits: RAZ/WI
    assert cpu.get_one_reg(first) == 0


def test_full_bitmap_vendor_space_follows_std_hyp_registers(small):
    cpu = vcpu(small, "b", "full-bitmap:width=2048")[0]
    vendor_first = regs.feat_reg(32, 2048)            # 65536 / 2048 std-hyp registers
    assert cpu.get_one_reg(vendor_first) == 0        # OPT opt-in, bit 0
    cpu.set_one_reg(vendor_first, 1)
    assert "OPT" in cpu.vm.guest_view()


def test_before_registers_from_every_supported_service_is_visible(small):
    vm = Kernel(small, "a", parse("upstream")).create_vm()
    assert vm.guest_view() == {"PV_TIME"}
    h = make(SMALL.replace('registers_from = "b"', 'registers_from = "c"'))
    assert Kernel(h, "b", parse("upstream")).create_vm().guest_view() == {"PV_TIME", "OPT"}
