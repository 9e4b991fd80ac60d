"""hcsim.over_seeds / dominance: scorecard measures over many synthetic seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hcsim
from hcsim.analyses import sensitivity

SEEDS = range(12)
STRATS = ["upstream", "raz-wi", "raz-einval"]


@pytest.fixture(scope="module")
def table():
    return hcsim.over_seeds(STRATS, ["qemu", "zero-unknown"], SEEDS, per_seed=True)


@pytest.fixture(scope="module")
def summary(table):
    return sensitivity.summarise(table)


def test_intervals_contain_the_mean_and_bracket_the_seeds(summary):
    s = summary.dropna()
    assert len(s) > 0
    assert (s["low"] <= s["mean"] + 1e-12).all() and (s["mean"] <= s["high"] + 1e-12).all()
    assert (s["min"] <= s["p_low"] + 1e-12).all() and (s["p_high"] <= s["max"] + 1e-12).all()
    assert (s["min"] <= s["mean"] + 1e-12).all() and (s["mean"] <= s["max"] + 1e-12).all()
    assert set(s["seeds"]) == {len(SEEDS)}


def test_the_t_interval_is_mean_plus_minus_t_sd_over_root_n(table, summary):
    # t(0.975, 11 dof) = 2.200985 (any table of Student's t)
    x = table.query("strategy == 'upstream' and vmm == 'qemu' and measure == 'fwd_preserved'")
    v = x["value"].to_numpy()
    row = summary.query("strategy == 'upstream' and vmm == 'qemu' "
                        "and measure == 'fwd_preserved'").iloc[0]
    half = 2.200985 * v.std(ddof=1) / math.sqrt(len(v))
    assert row["mean"] == pytest.approx(v.mean())
    assert row["high"] - row["mean"] == pytest.approx(half, rel=1e-5)
    assert half > 0          # the seeds do differ


@pytest.mark.parametrize("level,dof,expected", [(0.95, 29, 2.045230), (0.95, 2, 4.302653),
                                                (0.99, 3, 5.840909), (0.9, 1, 6.313752)])
def test_t_quantile_matches_the_table(level, dof, expected):
    assert sensitivity.t_quantile(level, dof) == pytest.approx(expected, abs=1e-5)


def test_seeds_change_the_results_and_a_seed_is_reproducible(table):
    up = table.query("strategy == 'upstream' and vmm == 'qemu' and measure == 'fwd_preserved'")
    assert up["value"].nunique() > 1
    again = hcsim.over_seeds(["upstream"], "qemu", [3, 5], ["fwd_preserved"], per_seed=True)
    assert list(again["value"]) == list(up.set_index("seed").loc[[3, 5], "value"])


def test_per_seed_values_are_the_scorecards(table):
    seed = 7
    h = hcsim.generate(seed=seed)
    for since, prefix in ((None, ""), (h.releases[h.registers_from], "era_")):
        card = hcsim.scorecard(h, "zero-unknown", STRATS, since=since).set_index("strategy")
        got = table[(table["seed"] == seed) & (table["vmm"] == "zero-unknown")]
        for st in STRATS:
            for m in ("fwd_preserved", "bwd_refused", "fwd_lost", "silent_loss"):
                v = got[(got["strategy"] == st) & (got["measure"] == prefix + m)]["value"]
                assert float(v.iloc[0]) == pytest.approx(float(card.loc[st, m])), (st, m)
            v = got[(got["strategy"] == st) & (got["measure"] == "pickup")]["value"]
            assert float(v.iloc[0]) == pytest.approx(float(card.loc[st, "pickup"]))


def test_generator_parameters_reach_the_histories():
    few = hcsim.over_seeds(["upstream"], "qemu", range(5), ["exhausted"], rate=0.05)
    many = hcsim.over_seeds(["upstream"], "qemu", range(5), ["exhausted"], rate=3.0)
    assert float(few["mean"].iloc[0]) < float(many["mean"].iloc[0]) == 1.0


def test_dominance_counts(table):
    same = hcsim.dominance(table, "raz-wi", "raz-wi")
    assert same == {"seeds": len(SEEDS), "never_worse": len(SEEDS), "dominates": 0,
                    "equal": len(SEEDS), "worse": 0}
    ab = hcsim.dominance(table, "raz-einval", "upstream", vmm="qemu")
    ba = hcsim.dominance(table, "upstream", "raz-einval", vmm="qemu")
    assert ab["seeds"] == ba["seeds"] == len(SEEDS)
    assert ab["dominates"] <= ba["worse"] and ba["dominates"] <= ab["worse"]
    assert ab["equal"] == ba["equal"]
    assert ab["never_worse"] + ab["worse"] == len(SEEDS)


def test_dominance_by_hand_on_one_measure(table):
    t = table[(table["vmm"] == "qemu") & (table["measure"] == "silent_loss")]
    w = t.pivot(index="seed", columns="strategy", values="value")
    a, b = w["raz-einval"].to_numpy(), w["raz-wi"].to_numpy()
    got = hcsim.dominance(table, "raz-einval", "raz-wi", vmm="qemu", measures=["silent_loss"])
    assert got["never_worse"] == int(np.sum(a <= b + 1e-12))
    assert got["dominates"] == int(np.sum(a < b - 1e-12))


@pytest.mark.parametrize("kwargs,fragment", [
    ({"measures": ["nope"]}, "unknown measure 'nope'"),
    ({"seeds": []}, "no seed"),
    ({"seeds": [1, 1]}, "seed 1 given twice"),
    ({"seeds": [-1]}, "seed"),
    ({"seeds": "12"}, "seeds must be"),
    ({"level": 1.5}, "level must be in (0, 1)"),
    ({"strategies": ["nope"]}, "nope"),
    ({"vmms": ["nope"]}, "nope"),
    ({"vmms": ["qemu", "qemu"]}, "given twice"),
    ({"rate": -1}, "rate"),
    ({"space_registers": "sometimes"}, "space_registers"),
])
def test_bad_arguments_are_one_line_input_errors(kwargs, fragment):
    args = {"strategies": ["upstream"], "vmms": "qemu", "seeds": range(2)} | kwargs
    with pytest.raises(hcsim.InputError) as e:
        hcsim.over_seeds(**args)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_dominance_refuses_a_measure_without_direction_and_an_unknown_strategy(table):
    with pytest.raises(hcsim.InputError, match="no better direction"):
        hcsim.dominance(table, "upstream", "raz-wi", measures=["fwd_gained"])
    with pytest.raises(hcsim.InputError, match="not in the table"):
        hcsim.dominance(table, "upstream", "wide")


def test_module_examples_run():
    import doctest

    assert doctest.testmod(sensitivity).failed == 0


def test_over_layouts_covers_the_four_assumptions_on_the_same_draws():
    t = hcsim.sensitivity.over_layouts(["upstream", "raz-einval"], "qemu", range(4),
                                       ["era_fwd_preserved", "exhausted"], rate=2.0)
    assert sorted(set(t["layout"])) == sorted(sensitivity.LAYOUTS) and len(sensitivity.LAYOUTS) == 4
    ex = t[(t["measure"] == "exhausted") & (t["strategy"] == "raz-einval")]
    by = ex.groupby("layout")["value"].mean()
    # function-numbered bits fill a reservation sooner, never later
    assert by["lazy/function-numbered"] >= by["lazy/dense"]
    with pytest.raises(hcsim.InputError, match="varies bits"):
        hcsim.sensitivity.over_layouts(["upstream"], "qemu", range(2), bits="dense")


def test_pivot_is_seeds_by_strategies_and_refuses_what_is_absent(table):
    w = hcsim.sensitivity.pivot(table, "silent_loss", "qemu")
    assert list(w.index) == list(SEEDS) and sorted(w.columns) == sorted(STRATS)
    with pytest.raises(hcsim.InputError, match="no values"):
        hcsim.sensitivity.pivot(table, "silent_loss", "crosvm")


def test_era_path_spans_the_register_era():
    h = hcsim.generate(releases=40, seed=0)
    path = hcsim.sensitivity.era_path(h)
    assert path[0] == h.releases[h.registers_from] and path[-1] == h.releases[-1]
    assert [h.index(r) for r in path] == sorted({h.index(r) for r in path})
    with pytest.raises(hcsim.InputError, match="needs 4"):
        hcsim.sensitivity.era_path(hcsim.generate(releases=6, seed=0, registers_from=4))


def test_fleet_over_seeds_rows_and_the_baseline_breaks_no_guest():
    d = hcsim.sensitivity.fleet_over_seeds(range(2), ["raz-wi", "raz-einval"], ["qemu"],
                                           hosts=20, guests=60, releases=30, rate=1.0)
    assert sorted(set(d["seed"])) == [0, 1] and set(d["config"]) == {"default", "baseline"}
    assert len(d) == 2 * 2 * 2
    assert (d[d["config"] == "baseline"]["broken_guests"] == 0).all()
    # the RAZ/WI rollback loses silently where raz-einval refuses
    dflt = d[d["config"] == "default"].set_index(["seed", "strategy"])
    assert (dflt.xs("raz-einval", level="strategy")["broken_guests"] == 0).all()


def test_montecarlo_grid_estimates_and_layout_helpers():
    mc = hcsim.montecarlo
    g = mc.grid("rate", [0.5, 2.0], 6, 0, strategies=["upstream"], releases=20)
    assert sorted(set(g["rate"])) == [0.5, 2.0] and len(g) == 12
    est = mc.estimates(g, "rate", "silent_loss")
    means, lows, highs = est["upstream"]
    assert len(means) == 2 and (lows <= means).all() and (means <= highs).all()
    hs = [hcsim.generate(releases=20, seed=k) for k in range(3)]
    eager = mc.with_layout(hs, "eager", "dense")
    assert [h.services for h in eager] == [h.services for h in hs]
    assert {h.space_registers for h in eager} == {"eager"}
    with pytest.raises(hcsim.InputError, match="unknown layout"):
        mc.with_layout(hs, "sometimes", "dense")
    # inside its reservation raz-einval lists no new register: no forward guest changes
    assert all(v == 0.0 or math.isnan(v) for v in mc.fwd_changed(eager, "raz-einval"))
