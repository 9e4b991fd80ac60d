"""The sweep's counts without the matrix equal the counts of the spec's outcomes.

:func:`hcsim.evaluation.engine.tally` counts outcomes and refusals by blame on
epoch pairs, weighted by the release pairs each stands for; a sweep scores
every history with it (:func:`hcsim.evaluation.measures.score_counts`).
``test_counts_and_score_equal_the_spec`` (test_engine_differential.py) checks
it on random histories for every strategy (drawn parameters) and VMM; here on
histories with other-register drift, on Linux, and where the spec stands in.
"""

from __future__ import annotations

import numpy as np
import pytest
from histgen import histories as drift_histories
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_engine_differential import POLICIES, check_tally, configurations, small, spec_strategy

from hcsim.evaluation import backends, engine, measures
from hcsim.evaluation.engine import EngineUnsupported
from hcsim.model.strategies import DEFAULTS
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(drift_histories(max_releases=6, max_services=6, drift=True), spec_strategy(),
       st.sampled_from(["qemu", "qemu-compat", "qemu-tolerant", "firecracker", "crosvm"]))
def test_tally_equals_the_spec_with_drift(h, spec, vmm):
    assume(small(h, spec))
    strategy, policy = parse_strategy(spec), parse_vmm(vmm)
    assume(engine.supports(h, strategy, policy)[0])
    check_tally(h, strategy, policy, None,
                backends.evaluate(h, strategy, policy, None, backend="spec"))


def test_tally_on_linux_equals_the_matrix_and_has_every_blame(linux_whole):
    """On Linux under QEMU (the whole list) every blame occurs, and the
    counts are those of the engine's own matrix."""
    strategy, policy = parse_strategy("upstream"), parse_vmm("qemu")
    counted, refused = engine.tally(linux_whole, strategy, policy)
    assert (refused[:, 1:] > 0).any(0).all()       # hypercall, other, both
    full = engine.evaluate(linux_whole, strategy, policy, compress=False)
    assert counted.tolist() == measures.counts(full).tolist()
    assert refused.tolist() == measures.blamed(full).tolist()


def test_tally_falls_back_to_the_spec_and_says_why(linux):
    """Where the engine cannot answer, ``auto`` counts the spec's outcomes and
    returns them (their reason); ``engine`` raises."""
    strategy, policy = parse_strategy("invalidate-on-write"), parse_vmm("qemu-compat")
    ok, reason = engine.supports(linux, strategy, policy)
    assert not ok
    with pytest.raises(EngineUnsupported, match="cannot evaluate"):
        backends.tally(linux, strategy, policy, backend="engine")
    counted, refused, outcomes = backends.tally(linux, strategy, policy)
    assert outcomes.reason == reason
    assert np.array_equal(counted, measures.counts(outcomes))


def test_tally_refuses_an_unknown_backend_in_one_line(linux):
    from hcsim.errors import InputError
    for count in (backends.tally, lambda h, s, v, backend: backends.tallies(h, [s], [v], backend=backend)):
        with pytest.raises(InputError, match=r"^unknown backend 'fast' \(known: auto, engine, spec\)$"):
            count(linux, parse_strategy("upstream"), parse_vmm("qemu"), backend="fast")


def test_models_are_shared_only_by_policies_that_read_alike(linux_whole):
    """Firecracker and Cloud Hypervisor read the same of every register of
    ``upstream`` on Linux: one model, one count.  A policy with its own
    restore is not modelled at all, and never borrows another's model."""
    from hcsim.model.vmm import CloudHypervisor, Firecracker, Qemu

    class OwnRestore(Qemu):
        name = "own-restore"

        def restore(self, vcpus, stream):
            return super().restore(vcpus, stream)

    strategy = parse_strategy("upstream")
    fc, ch = Firecracker(), CloudHypervisor()
    assert engine.model(linux_whole, strategy, fc) is engine.model(linux_whole, strategy, ch)
    assert engine.model(linux_whole, strategy, fc) is not engine.model(
        linux_whole, strategy, parse_vmm("crosvm"))
    for got, want in zip(engine.tally(linux_whole, strategy, ch),
                         engine.tally(linux_whole, strategy, fc)):
        assert (got == want).all()
    ok, reason = engine.supports(linux_whole, strategy, OwnRestore())
    assert not ok and "overrides restore" in reason


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(drift_histories(max_releases=10, max_services=6, drift=True),
                 drift_histories(max_releases=10, max_services=8)),
       st.lists(spec_strategy(), min_size=1, max_size=3), st.data())
def test_policies_counted_together_equal_each_counted_alone(h, specs, data):
    """:func:`engine.tallies` stacks the source rows of every strategy and
    policy into one kernel pass and one weighted count (per set of epochs);
    each one's counts must be those of its own :func:`engine.tally` on a
    layout of its own (nothing cached shared between the two)."""
    assume(all(small(h, spec) for spec in specs))
    configs = configurations(data.draw, h)
    _check_together(h, specs, configs)


def _check_together(h, specs, configs=None):
    def policies():
        return [*(cls() for cls in POLICIES.values()),
                parse_vmm("qemu-compat:hidden=,safe-missing=0x603000000013c103")]
    together = engine.tallies(h, [parse_strategy(spec) for spec in specs], policies(), configs)
    assert [len(row) for row in together] == [len(POLICIES) + 1] * len(specs)
    for spec, row in zip(specs, together):
        for policy, got in zip(policies(), row):
            strategy, name = parse_strategy(spec), policy.name
            try:
                want = engine.tally(h, strategy, policy, configs)
            except EngineUnsupported as exc:
                assert isinstance(got, EngineUnsupported) and str(got) == str(exc)
                continue
            assert [x.tolist() for x in got] == [x.tolist() for x in want], (spec, name)


def test_strategies_counted_together_equal_each_counted_alone(linux_whole, linux):
    """The layouts of Linux share its epochs, so every strategy's models go
    through one kernel pass: rows of several layouts, each against its own
    destination words and strict groups."""
    specs = list(DEFAULTS)
    starts = {engine._layout_arrays(parse_strategy(s), linux_whole).starts.tobytes()
              for s in specs}
    assert len(starts) < len(specs)         # some layouts stacked in one pass
    for h in (linux_whole, linux):
        _check_together(h, specs)


def test_qemu_compat_shares_qemus_model_only_where_its_ids_are_never_listed(linux_whole):
    """``x-mig-hidden-regs`` and ``x-mig-safe-missing-regs`` name ids; ids a
    history never lists change nothing, so such a ``qemu-compat`` is QEMU
    there (one model, one count).  Linux lists BMAP_2 (v6.16) and TCR2_EL1
    (v6.12, an other register): the series' own lists are not QEMU's."""
    strategy = parse_strategy("upstream")
    qemu = engine.model(linux_whole, strategy, parse_vmm("qemu"))
    absent = parse_vmm("qemu-compat:hidden=0x60300000001600ff,safe-missing=0x603000000013ffff")
    assert engine.model(linux_whole, strategy, absent) is qemu
    for listed in ("qemu-compat", "qemu-compat:hidden=,safe-missing=TCR2_EL1",
                   "qemu-compat:hidden=VENDOR_HYP_BMAP_2,safe-missing="):
        assert engine.model(linux_whole, strategy, parse_vmm(listed)) is not qemu, listed
    got = engine.tallies(linux_whole, [strategy], [parse_vmm("qemu"), absent,
                                                  parse_vmm("qemu-compat")])[0]
    assert [x.tolist() for x in got[0]] == [x.tolist() for x in got[1]]
    assert [x.tolist() for x in got[0]] != [x.tolist() for x in got[2]]


#: A vendor space whose second service's two function numbers straddle two
#: 2048-bit registers of ``full-bitmap:width=2048`` (functions 2047 and 2048),
#: and a standard service (a second register for ``invalidate-on-write``).
STRADDLE = """
name = "straddle"
releases = ["r0", "r1", "r2"]
registers_from = "r0"
[[service]]
name = "A"
space = "vendor-hyp"
functions = 2047
introduced = "r0"
[[service]]
name = "B"
space = "vendor-hyp"
functions = 2
introduced = "r1"
[[service]]
name = "C"
space = "std"
introduced = "r0"
"""


def test_hidden_registers_hide_whole_services_only():
    """``x-mig-hidden-regs`` leaves a register out of the list: the services
    with every slot in hidden registers keep the destination's reset value
    (the engine equals the spec); a service with slots in a hidden and a saved
    register is not modelled, and the engine says so."""
    from hcsim.model.history import loads

    h = loads(STRADDLE)
    strategy = parse_strategy("full-bitmap:width=2048")
    la = engine._layout_arrays(strategy, h)
    b = la.index["B"]
    first, second = sorted(set(la.slot_reg[la.slot_owner == b].tolist()))
    half = parse_vmm(f"qemu-compat:hidden={int(la.reg_ids[second]):#x},safe-missing=")
    ok, reason = engine.supports(h, strategy, half)
    assert not ok and reason == "a service spans hidden and saved registers"
    both = parse_vmm(f"qemu-compat:hidden={int(la.reg_ids[first]):#x};{int(la.reg_ids[second]):#x},"
                     "safe-missing=")
    assert engine.supports(h, strategy, both) == (True, "")
    assert engine.model(h, strategy, both).hid.any()
    fast = backends.evaluate(h, strategy, both, backend="engine")
    slow = backends.evaluate(h, strategy, both, backend="spec")
    assert np.array_equal(fast.codes, slow.codes)
    assert np.array_equal(fast.gained, slow.gained) and np.array_equal(fast.lost, slow.lost)
    inval = parse_strategy("invalidate-on-write")
    la = engine._layout_arrays(inval, h)
    assert len(la.reg_ids) == 2
    vendor = int(la.reg_ids[la.slot_reg[la.slot_owner == la.index["B"]][0]])
    hide = parse_vmm(f"qemu-compat:hidden={vendor:#x},safe-missing=")
    assert engine.supports(h, inval, hide) == (False, "a hidden feature register under "
                                                      "invalidate-on-write")


def test_equal_layouts_share_arrays_not_models(linux_whole):
    """``upstream`` and ``invalidate-on-write`` lay the registers out alike:
    the engine builds their arrays once, but each keeps its own models
    (invalidation differs), and each equals the spec."""
    from hcsim.model.synthetic import params

    up, inval = parse_strategy("upstream"), parse_strategy("invalidate-on-write")
    # a synthetic history where invalidation changes Firecracker's outcomes
    differ = 0
    for h in (linux_whole, params(releases=30).history(1)):
        assert engine._layout_arrays(up, h) is engine._layout_arrays(inval, h)
        assert engine._layout_arrays(parse_strategy("raz-wi"), h) is not \
            engine._layout_arrays(parse_strategy("raz-einval"), h)      # strict differs
        # equal registers and bits, but the opt-in overflow resets its services off
        assert engine._layout_arrays(parse_strategy("raz-einval:ranges=1"), h) is not \
            engine._layout_arrays(parse_strategy("raz-einval:ranges=1,overflow=opt-in"), h)
        for name in ("qemu", "firecracker", "cloud-hypervisor"):
            vmm = parse_vmm(name)
            a, b = engine.model(h, up, vmm), engine.model(h, inval, vmm)
            assert a is not b and (a.inval_feature, b.inval_feature) == (False, True)
            got = []
            for strategy in (up, inval):
                fast = backends.evaluate(h, strategy, vmm, backend="engine")
                slow = backends.evaluate(h, strategy, vmm, backend="spec")
                assert np.array_equal(fast.codes, slow.codes), (strategy.spec, name)
                got.append(fast.codes)
            differ += not np.array_equal(*got)
    assert differ       # invalidation changes some outcome: a shared model would be wrong
    # a busy history past a one-register reservation: the opt-in overflow
    # changes outcomes, and each layout's engine answer equals the spec
    busy = params(releases=12, rate=8.0).history(2)
    got = []
    for spec in ("raz-einval:ranges=1", "raz-einval:ranges=1,overflow=opt-in"):
        fast = backends.evaluate(busy, parse_strategy(spec), parse_vmm("qemu"), backend="engine")
        slow = backends.evaluate(busy, parse_strategy(spec), parse_vmm("qemu"), backend="spec")
        assert np.array_equal(fast.codes, slow.codes), spec
        got.append(fast.codes)
    assert not np.array_equal(*got)


def test_forget_frees_a_history_without_the_collector():
    """A sweep forgets each history once counted: what the engine and the
    strategies kept of it is then freed by reference counting alone (no
    cycle left for the garbage collector), and counting it again gives the
    same tallies."""
    import gc
    import weakref

    from hcsim.model.synthetic import DRIFT_PRESETS, params
    from hcsim.model.vmm import REGISTRY

    chosen = [parse_strategy(s) for s in (*DEFAULTS, "raz-einval:ranges=1,overflow=opt-in")]
    vmms = [parse_vmm(n) for n in REGISTRY]
    make = params(releases=30, **DRIFT_PRESETS["linux"]).history
    first = engine.tallies(make(5), chosen, vmms)
    gc.collect()
    gc.disable()
    try:
        h = make(5)
        again = engine.tallies(h, chosen, vmms)
        assert h.memo and any(s._cache for s in chosen)
        ref = weakref.ref(h)
        engine.forget(h, chosen)
        assert not h.memo
        del h
        assert ref() is None
    finally:
        gc.enable()
    for a, b in zip(first, again):
        for x, y in zip(a, b):
            assert [z.tolist() for z in x] == [z.tolist() for z in y]
