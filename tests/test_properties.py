"""Invariants over random histories (hypothesis)."""

from __future__ import annotations

from histgen import histories
from hypothesis import given, settings
from hypothesis import strategies as st

from hcsim.evaluation.spec import migrate
from hcsim.model.strategies import parse
from hcsim.model.vmm import REGISTRY
from hcsim.model.vmm import parse as vmm

SPECS = ["upstream", "invalidate-on-write", "invalidate-on-write:scope=fw",
         "raz-wi:ranges=1", "wide:width=128", "full-bitmap:width=1024", "raz-einval:ranges=1"]

spec_st = st.sampled_from(SPECS)
vmm_st = st.sampled_from(sorted(REGISTRY))


@settings(max_examples=60, deadline=None)
@given(histories(), spec_st, vmm_st, st.data())
def test_migrating_to_the_same_release_is_preserved_or_unsupported(h, spec, policy, data):
    release = data.draw(st.integers(0, len(h.releases) - 1))
    off = frozenset(data.draw(st.sets(st.sampled_from([s.name for s in h.services])))
                    if h.services else ())
    m = migrate(h, parse(spec), vmm(policy), release, release, off)
    if spec == "invalidate-on-write:scope=fw":
        # DESIGN.md 8: under scope=fw self-migration need not be preserved.
        assert m.outcome != "refused"
    else:
        assert m.outcome in ("preserved", "unsupported"), m


@settings(max_examples=40, deadline=None)
@given(histories(firmware=False), spec_st, st.data())
def test_outcome_does_not_depend_on_the_number_of_vcpus(h, spec, data):
    n = len(h.releases)
    src, dst = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
    policy = data.draw(vmm_st)
    one = migrate(h, parse(spec), vmm(policy), src, dst, vcpus=1)
    three = migrate(h, parse(spec), vmm(policy), src, dst, vcpus=3)
    assert (one.outcome, one.gained, one.lost) == (three.outcome, three.gained, three.lost)
