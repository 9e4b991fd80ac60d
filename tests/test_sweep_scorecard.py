"""The sweep's scorecard columns are ``hcsim compare``'s scorecard, row for row.

A sweep does not build a :class:`~hcsim.evaluation.measures.Score` per row:
it asks the cost at the last release once per history
(:func:`~hcsim.evaluation.measures.last_costs`), pickup and exhaustion once
per strategy, and the shares of a whole batch at once
(:func:`~hcsim.evaluation.measures.flat_columns`).  Here every row of
sweeps with other-register drift equals :func:`~hcsim.evaluation.measures.score`
on the full outcomes of the regenerated history (the spec's for two sweeps,
the engine's ``[n, n]`` matrices for the others); and the batched
cost equals a sum over the new VM's registers of what the VMM policy says
of each one.
"""

from __future__ import annotations

import math

import histgen
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from hcsim.analyses import sweep
from hcsim.evaluation import backends, engine, measures
from hcsim.model import config as config_mod
from hcsim.model import strategies, synthetic
from hcsim.model import vmm as vmm_mod

CONFIGS = ["default", "random:p=0.5,seed=3,n=2"]
#: (generator keywords, first seed, register view, histories, backend of the
#: full outcomes).  The engine's full outcomes equal the spec's on every
#: triple (tests/test_engine_differential.py, test_whole_list.py); the spec
#: itself stands in for one drift history and one without drift.
SWEEPS = [
    (dict(releases=6, rate=1.5, firmware=0.5, opt_in=0.3, **synthetic.LINUX_DRIFT), 40, None,
     3, "engine"),
    (dict(releases=7, rate=0.8, registers_from=0, burst=0.4, **synthetic.LINUX_DRIFT), 900,
     None, 3, "engine"),
    (dict(releases=6, rate=2.0, **synthetic.LINUX_DRIFT), 7, "hypercall", 3, "engine"),
    (dict(releases=5, rate=1.2, firmware=0.5, opt_in=0.3, **synthetic.LINUX_DRIFT), 41, None,
     1, "spec"),
    (dict(releases=5, rate=1.0, firmware=0.3), 123, None, 2, "spec"),
]


@pytest.mark.parametrize(("generator", "seed", "view", "histories", "backend"), SWEEPS)
def test_every_row_is_the_score_of_the_full_outcomes(generator, seed, view, histories,
                                                     backend):
    df = sweep.run(histories, seed=seed, configs=CONFIGS, jobs=1, registers=view,
                   **generator)
    params = synthetic.params(**generator)
    vmms = {name: vmm_mod.parse(name) for name in vmm_mod.REGISTRY}
    measured = [k for k in _flat_keys() if k not in ("strategy", "exhaustion")]
    assert [c for c in df.columns if c in measured] == measured     # all, in order
    differ = 0
    for s in sorted(set(df["seed"])):
        history = params.history(s)
        if view is not None:
            history = history.with_registers(view)
        rows = df[df["seed"] == s]
        for strategy in map(strategies.parse, df["strategy"].cat.categories):
            for name, vmm in vmms.items():
                for spec in CONFIGS:
                    configs = config_mod.parse(spec, history)
                    outcomes = backends.evaluate(history, strategy, vmm, configs, backend,
                                                 sets=False)
                    want = measures.score(outcomes).flat()
                    got = rows[(rows["strategy"] == strategy.spec) & (rows["vmm"] == name)
                               & (rows["config"] == spec)]
                    assert len(got) == 1
                    got = got.iloc[0]
                    for key in measured:
                        w = math.nan if want[key] is None else want[key]
                        assert got[key] == w or (math.isnan(w) and math.isnan(got[key])), \
                            (s, strategy.spec, name, spec, key)
                    ex = want["exhaustion"]
                    assert (str(got["exhaustion"]) == ex if ex
                            else math.isnan(got["exhaustion_index"]))
                    differ += want["fwd_preserved"] != want["bwd_preserved"]
    assert differ      # the rows are not all alike


def _flat_keys() -> list[str]:
    h = synthetic.generate(releases=4, rate=1.0, seed=1)
    st, vmm = strategies.parse("upstream"), vmm_mod.parse("qemu")
    return list(measures.score(backends.evaluate(h, st, vmm)).flat())


def test_flat_columns_are_score_flat_in_order():
    """The batched columns are named and ordered as :meth:`Score.flat`, and
    their values are each row's :func:`score_counts`."""
    h = synthetic.generate(releases=6, rate=1.5, seed=5, **synthetic.LINUX_DRIFT)
    vmm = vmm_mod.parse("qemu")
    chosen = [strategies.parse(s) for s in strategies.DEFAULTS]
    counted, refused = zip(*(backends.tally(h, st, vmm)[:2] for st in chosen))
    scores = [measures.score_counts(h, st, vmm, c, r)
              for st, c, r in zip(chosen, counted, refused)]
    given = {k: np.array([getattr(s, k) for s in scores], float)     # None: NaN
             for k in ("bytes_per_vcpu", "pickup", "list_bytes_per_vcpu")}
    assert np.isnan(given["bytes_per_vcpu"]).any()
    cols = measures.flat_columns(np.stack(counted), np.stack(refused), **given)
    keys = [k for k in scores[0].flat() if k not in ("strategy", "exhaustion")]
    assert list(cols) == keys
    for i, s in enumerate(scores):
        got = {k: v[i].item() for k, v in cols.items()}
        assert {k: None if isinstance(v, float) and math.isnan(v) else v
                for k, v in got.items()} == {k: v for k, v in s.flat().items() if k in keys}
    with pytest.raises(ValueError, match="not a scalar field of Score: bytes"):
        measures.flat_columns(np.stack(counted), np.stack(refused), bytes=given["pickup"])


def test_scorecard_arrays_of_no_pairs_are_zero():
    """A direction without pairs (one release) has every share 0, as :func:`shares` says."""
    shares, silent, patch, split = measures.scorecard_arrays(np.zeros((3, 2, 6), int),
                                                             np.zeros((3, 2, 4), int))
    assert not shares.any() and not silent.any() and not split.any()
    assert patch.all()          # forward preserved 0 < 1, as score() has it


def _by_register(history, strategy, vmm, feature_only=False):
    """bytes per vCPU of the hypercall registers and of the whole list, or None:
    the VMM policy asked of each register of a new VM at the last release."""
    cpu_list = measures.fresh(history, strategy, len(history.releases) - 1)[0]
    if not all(vmm.handles(r) for r in cpu_list):
        return None, None
    classes = (0x16,) if feature_only else (0x14, 0x16)
    saved = [r for r in cpu_list if vmm.saves(r)]
    return (sum(vmm.wire_bytes(r) for r in saved if (r >> 16) & 0xFFF in classes),
            sum(vmm.wire_bytes(r) for r in saved))


@pytest.mark.parametrize("seed", [2, 31])
def test_last_costs_sum_each_registers_answer(seed):
    h = synthetic.generate(releases=8, rate=2.0, firmware=0.5, seed=seed, **synthetic.LINUX_DRIFT)
    chosen = [strategies.parse(s) for s in (*strategies.DEFAULTS, "raz-wi:ranges=1")]
    vmms = [vmm_mod.parse(v) for v in vmm_mod.REGISTRY]
    hyp, whole = measures.last_costs(h, chosen, vmms)
    assert hyp.shape == whole.shape == (len(chosen), len(vmms))
    assert np.isnan(hyp).any() and not np.isnan(hyp).all()
    last = len(h.releases) - 1
    for i, st in enumerate(chosen):
        for j, vmm in enumerate(vmms):
            want = _by_register(h, st, vmm)
            got = tuple(None if math.isnan(x) else int(x) for x in (hyp[i, j], whole[i, j]))
            assert got == want, (st.spec, vmm.name)
            c = measures.cost_at(h, st, vmm, last, feature_only=True)
            assert c.bytes_per_vcpu == _by_register(h, st, vmm, feature_only=True)[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=histgen.histories(max_releases=6, max_services=8, drift=True),
       view=hs.sampled_from(["all", "hypercall"]))
def test_engine_new_vm_is_the_booted_one(h, view):
    """The sweep reads a new VM off the engine's arrays (engine.fresh): at
    every release, under every default strategy, the same ids as the spec's
    booted vCPU lists and as many services as its guest sees."""
    h = h.with_registers(view)
    for spec in (*strategies.DEFAULTS, "raz-wi:ranges=1"):
        strategy = strategies.parse(spec)
        for r in range(len(h.releases)):
            ids, seen = engine.fresh(h, strategy, r)
            booted, view_names = measures.fresh(h, strategy, r)
            assert ids.tolist() == list(booted), (spec, r)
            assert seen == len(view_names), (spec, r)


@pytest.mark.parametrize("view", ["all", "hypercall"])
def test_engine_new_vm_is_the_booted_one_on_linux(linux_whole, view):
    h = linux_whole.with_registers(view)
    for spec in strategies.DEFAULTS:
        strategy = strategies.parse(spec)
        for r in range(len(h.releases)):
            ids, seen = engine.fresh(h, strategy, r)
            booted, view_names = measures.fresh(h, strategy, r)
            assert ids.tolist() == list(booted) and seen == len(view_names), (spec, r)
