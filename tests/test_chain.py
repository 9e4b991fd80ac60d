"""Multi-hop chains (hcsim.analyses.chain): state carried from hop to hop."""

from __future__ import annotations

import doctest

import pytest
from histgen import histories
from hypothesis import given, settings
from hypothesis import strategies as st

import hcsim.analyses.chain
from hcsim.analyses.chain import create, hop, migrate_chain
from hcsim.errors import InputError
from hcsim.evaluation.measures import cost_at
from hcsim.evaluation.spec import migrate
from hcsim.model import strategies
from hcsim.model import vmm as vmm_mod
from hcsim.model.config import Setting
from hcsim.model.kvm import Kernel

SPECS = ["upstream", "invalidate-on-write", "invalidate-on-write:scope=fw",
         "raz-wi:ranges=1", "wide:width=128", "full-bitmap:width=1024", "raz-einval:ranges=1"]
spec_st = st.sampled_from(SPECS)
vmm_st = st.sampled_from(sorted(vmm_mod.REGISTRY))


def chain(h, spec, policy, path, off=frozenset()):
    return migrate_chain(h, strategies.parse(spec), vmm_mod.parse(policy), path, off)


# -- hand-derived chains on tests/data/four.toml -----------------------------------
# four: PV_TIME (std-hyp) and TRNG (std) at r0, registers from r1, PV_LOCK joins
# std-hyp at r2, PTP opens vendor-hyp at r3.  Under upstream r1 and r2 list
# PSCI_VERSION, STD_BMAP and STD_HYP_BMAP (3 registers), r3 adds VENDOR_HYP_BMAP.
# Under raz-wi (4 reserved registers from r1) the services are bits 0..3 of
# register 0 in order PV_TIME, TRNG, PV_LOCK, PTP.

def test_upstream_qemu_gains_ptp_forward_then_cannot_go_back(four):
    c = chain(four, "upstream", "qemu", ["r1", "r3", "r1"])
    assert c.boot_view == {"PV_TIME", "TRNG"}
    # r1 -> r3: QEMU overlays STD/STD_HYP from the stream and writes back
    # VENDOR_HYP_BMAP as read at creation (reset 0x1): PTP appears.
    first, back = c.hops
    assert (first.outcome, first.gained) == ("gained", {"PTP"})
    # r3 -> r1: four registers in the stream, r1 has three.
    assert back.outcome == "refused"
    assert back.detail.startswith("count 4 > 3 (QEMU: failed to load cpu:cpreg_vmstate_array_len)")
    assert c.final == "r3" and c.drift_gained == {"PTP"} and not c.broken


def test_raz_wi_loses_new_bits_down_and_never_gets_them_back(four):
    c = chain(four, "raz-wi", "qemu", ["r3", "r1", "r3"])
    down, up = c.hops
    # r1 knows bits 0..1 only: RAZ/WI drops PV_LOCK and PTP without an error.
    assert (down.outcome, down.lost) == ("lost", {"PV_LOCK", "PTP"})
    # r1 reads back 0b0011, so r3 gets 0b0011: the pair r1 -> r3 looks preserved ...
    assert up.outcome == "preserved"
    assert migrate(four, strategies.parse("raz-wi"), vmm_mod.parse("qemu"), 1, 3).outcome \
        == "preserved"
    # ... and so does the end-to-end pair r3 -> r3, but the guest is broken.
    assert migrate(four, strategies.parse("raz-wi"), vmm_mod.parse("qemu"), 3, 3).outcome \
        == "preserved"
    assert up.drift_lost == {"PV_LOCK", "PTP"} and c.drift_lost == {"PV_LOCK", "PTP"}


def test_losing_a_service_gained_on_the_way_is_not_a_loss_for_the_guest(four):
    c = chain(four, "raz-wi", "qemu", ["r0", "r2", "r1"])
    up, down = c.hops
    # r0 has no feature registers: r2 keeps its reset value 0b0111, PV_LOCK appears.
    assert (up.outcome, up.gained) == ("gained", {"PV_LOCK"})
    # r1 drops bit 2: the pair says "lost", but the guest never booted with PV_LOCK.
    assert (down.outcome, down.lost) == ("lost", {"PV_LOCK"})
    assert not down.drift_lost and not c.ever_lost and c.final_view == c.boot_view


def test_firecracker_keeps_the_gain_then_enoent(four):
    c = chain(four, "upstream", "firecracker", ["r1", "r3", "r2"])
    assert c.hops[0].gained == {"PTP"}
    assert (c.hops[1].outcome, c.hops[1].detail) == \
        ("refused", "ENOENT on KVM_REG_ARM_VENDOR_HYP_BMAP")


def test_a_refused_hop_is_followed_from_where_the_guest_stayed(four):
    c = chain(four, "upstream", "qemu", ["r1", "r3", "r1", "r2"])
    assert [(h.src, h.dst) for h in c.hops] == [("r1", "r3"), ("r3", "r1"), ("r3", "r2")]
    assert c.hops[2].outcome == "refused" and c.final == "r3"


def test_linux_chain_with_stable_kernels_and_opt_in(linux):
    opt_in = Setting(on=frozenset({"DISCOVER_IMPL_VER"}), firmware=(("PSCI_VERSION", 0x10001),))
    c = chain(linux, "upstream", "qemu-tolerant", ["v6.15", "6.12.117+deb13-arm64"], opt_in)
    # VENDOR_HYP_BMAP_2 = 0x1 is not 0: QEMU's tolerance does not drop it.
    assert c.hops[0].outcome == "refused" and "count 8 > 7" in c.hops[0].detail
    plain = chain(linux, "upstream", "qemu-tolerant", ["v6.15", "6.12.117+deb13-arm64"],
                  Setting(firmware=(("PSCI_VERSION", 0x10001),)))
    assert plain.hops[0].outcome == "preserved"


def test_bytes_per_vcpu_is_the_cost_of_the_source_stream(linux):
    c = chain(linux, "upstream", "firecracker", ["v6.1", "v6.15", "v6.1"])
    v61, v615 = linux.index("v6.1"), linux.index("v6.15")
    fc, up = vmm_mod.parse("firecracker"), strategies.parse("upstream")
    assert c.hops[0].bytes_per_vcpu == cost_at(linux, up, fc, v61).bytes_per_vcpu
    assert c.hops[1].bytes_per_vcpu == cost_at(linux, up, fc, v615).bytes_per_vcpu


def test_a_chain_needs_a_boot_kernel_and_known_names(four):
    with pytest.raises(InputError, match="at least"):
        chain(four, "upstream", "qemu", [])
    with pytest.raises(InputError, match="unknown release 'r9'"):
        chain(four, "upstream", "qemu", ["r0", "r9"])
    one = chain(four, "upstream", "qemu", ["r2"])
    assert one.hops == () and one.final == "r2" and one.final_view == one.boot_view


def test_a_setting_the_kernel_rejects_is_bad_input(four):
    with pytest.raises(InputError, match="cannot configure a VM on r1: EINVAL"):
        chain(four, "upstream", "qemu", ["r1"], Setting(firmware=(("PSCI_VERSION", 0x10003),)))


def test_docstring_examples():
    assert doctest.testmod(hcsim.analyses.chain).failed == 0


# -- properties ---------------------------------------------------------------------

def _draw_off(data, h):
    names = [s.name for s in h.services]
    return frozenset(data.draw(st.sets(st.sampled_from(names)))) if names else frozenset()


@settings(max_examples=80, deadline=None)
@given(histories(), spec_st, vmm_st, st.data())
def test_one_hop_from_a_fresh_guest_is_the_single_pair_migration(h, spec, policy, data):
    n = len(h.releases)
    src, dst = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
    off = _draw_off(data, h)
    strategy, v = strategies.parse(spec), vmm_mod.parse(policy)
    c = migrate_chain(h, strategy, v, [src, dst], off)
    m = migrate(h, strategy, v, src, dst, off)
    (step,) = c.hops
    assert (step.outcome, step.gained, step.lost, step.detail) == \
        (m.outcome, m.gained, m.lost, m.detail)


@settings(max_examples=60, deadline=None)
@given(histories(), spec_st, vmm_st, st.data())
def test_drift_is_the_composition_of_the_hops(h, spec, policy, data):
    n = len(h.releases)
    path = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5))
    c = chain(h, spec, policy, path, _draw_off(data, h))
    view = c.boot_view
    for step in c.hops:
        if step.outcome in ("refused", "unsupported"):
            assert not step.gained and not step.lost
        view = (view | step.gained) - step.lost
        assert step.drift_lost == c.boot_view - view
        assert step.drift_gained == view - c.boot_view
    assert view == c.final_view
    if all(s.outcome in ("preserved", "gained", "refused", "unsupported") for s in c.hops):
        assert not c.ever_lost


@settings(max_examples=60, deadline=None)
@given(histories(), spec_st, vmm_st, st.data())
def test_a_carried_guest_migrated_to_its_own_kernel_keeps_its_state(h, spec, policy, data):
    n = len(h.releases)
    path = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
    strategy, v = strategies.parse(spec), vmm_mod.parse(policy)
    guest = create(Kernel(h, path[0], strategy), v, _draw_off(data, h))
    for rel in path[1:]:
        _, guest = hop(guest, v, Kernel(h, rel, strategy))
    step, again = hop(guest, v, guest.kernel)
    if spec == "invalidate-on-write:scope=fw" or step.outcome == "unsupported":
        return   # DESIGN.md 8: scope=fw need not preserve self-migration
    assert step.outcome == "preserved", step
    assert again.state() == guest.state()
