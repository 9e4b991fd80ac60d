"""The four-release history of tests/data/four.toml, pair by pair.

r0 has no feature registers (registers_from = r1); PV_LOCK joins the
std-hyp space at r2 (a new bit in an existing register); PTP opens the
vendor-hyp space at r3 (a new register under upstream).
"""

from __future__ import annotations

import pytest

from hcsim.evaluation.backends import evaluate
from hcsim.model.strategies import parse
from hcsim.model.vmm import parse as vmm


def grid(history, spec, policy):
    n = len(history.releases)
    ms = evaluate(history, parse(spec), vmm(policy), backend="spec").migrations()
    return {(history.releases[m.src], history.releases[m.dst]): m for m in ms}, n


# Expected outcomes, derived by hand from DESIGN.md (rows: source).
UPSTREAM_QEMU = {
    # r0 has no registers: the destination keeps its reset values.
    ("r0", "r1"): "preserved", ("r0", "r2"): "gained", ("r0", "r3"): "gained",
    # r0 lists no bitmap: QEMU's count check refuses every backward move to it.
    ("r1", "r0"): "refused", ("r2", "r0"): "refused", ("r3", "r0"): "refused",
    # new bit in an existing register: QEMU restores the old value, bit stays 0.
    ("r1", "r2"): "preserved",
    # new register: absent from the stream, QEMU keeps its reset value.
    ("r1", "r3"): "gained", ("r2", "r3"): "gained",
    # backward with an unknown bit set: -EINVAL.
    ("r2", "r1"): "refused",
    # backward with an unknown register: count check.
    ("r3", "r1"): "refused", ("r3", "r2"): "refused",
}


def test_upstream_under_qemu_pair_by_pair(four):
    got, _ = grid(four, "upstream", "qemu")
    for pair, outcome in UPSTREAM_QEMU.items():
        assert got[pair].outcome == outcome, (pair, got[pair])
    assert got[("r1", "r3")].gained == {"PTP"}
    assert got[("r2", "r1")].detail == "EINVAL on KVM_REG_ARM_STD_HYP_BMAP"
    assert got[("r3", "r2")].detail.startswith("count 4 > 3")


def test_raz_wi_forward_preserved_backward_lost(four):
    got, _ = grid(four, "raz-wi", "qemu")
    for src, dst in [("r1", "r2"), ("r1", "r3"), ("r2", "r3")]:
        assert got[(src, dst)].outcome == "preserved"
    assert (got[("r2", "r1")].outcome, got[("r2", "r1")].lost) == ("lost", {"PV_LOCK"})
    assert (got[("r3", "r2")].outcome, got[("r3", "r2")].lost) == ("lost", {"PTP"})
    assert got[("r3", "r1")].lost == {"PV_LOCK", "PTP"}


@pytest.mark.parametrize("policy,forward_new_register", [
    ("qemu", "gained"),          # QEMU writes back the reset value it read
    ("firecracker", "preserved"),  # snapshot only: the new register stays invalidated
])
def test_invalidate_on_write(four, policy, forward_new_register):
    got, _ = grid(four, "invalidate-on-write", policy)
    assert got[("r1", "r3")].outcome == forward_new_register
    assert got[("r1", "r2")].outcome == "preserved"
    assert got[("r2", "r1")].outcome == "refused"    # unknown bit still -EINVAL


def test_our_raz_einval_refuses_instead_of_losing(four):
    got, _ = grid(four, "raz-einval", "qemu")
    for src, dst in [("r1", "r2"), ("r1", "r3"), ("r2", "r3")]:
        assert got[(src, dst)].outcome == "preserved"
    for src, dst in [("r2", "r1"), ("r3", "r2"), ("r3", "r1")]:
        assert got[(src, dst)].outcome == "refused"
        assert got[(src, dst)].detail.startswith("EINVAL")
    # the reserved register is not upstream's KVM_REG_ARM_STD_BMAP, though both are index 0
    assert got[("r2", "r1")].detail == "EINVAL on FW_FEAT_BMAP(0, U64)"


def test_raz_einval_backward_is_preserved_when_the_guest_does_not_use_the_new_service(four):
    from hcsim.evaluation.spec import migrate
    m = migrate(four, parse("raz-einval"), vmm("qemu"), 3, 2, off=frozenset({"PTP"}))
    assert m.outcome == "preserved"
    m = migrate(four, parse("upstream"), vmm("qemu"), 3, 2, off=frozenset({"PTP"}))
    assert m.outcome == "refused"                     # the new register still counts
