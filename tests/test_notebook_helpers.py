"""The package code behind the notebooks: trace, evidence, montecarlo, positions, plots."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import make

import hcsim
from hcsim import OUTCOMES, parse_strategy, parse_vmm
from hcsim.analyses import evidence, montecarlo
from hcsim.evaluation import measures, spec, trace
from hcsim.evaluation.backends import evaluate
from hcsim.frontends import narrate, plots
from hcsim.model import synthetic
from hcsim.model.kvm import VCPU

# -- trace ---------------------------------------------------------------------------


def test_trace_restores_the_vcpu_methods_even_on_error():
    before = {name: getattr(VCPU, name) for name in trace.IOCTLS}
    with pytest.raises(RuntimeError), trace.record():
        assert VCPU.get_one_reg is not before["get_one_reg"]
        raise RuntimeError("boom")
    assert {name: getattr(VCPU, name) for name in trace.IOCTLS} == before


def test_psci_refusal_ends_at_the_failing_set(linux):
    # FACTS.md 2: v6.13 resets PSCI_VERSION to 1.3 (0x10003); v6.12 accepts at most 1.1.
    with trace.record() as calls:
        m = spec.migrate(linux, parse_strategy("upstream"), parse_vmm("qemu"),
                             linux.index("v6.13"), linux.index("v6.12"))
    last = calls[-1]
    assert m.outcome == "refused"
    assert (last.ioctl, last.reg, last.value, last.result) == (
        "KVM_SET_ONE_REG", 0x6030000000140000, 0x10003, "-1 EINVAL")
    assert trace.last_error(calls) is last
    assert last.text() == "v6.12 vcpu0: ioctl(KVM_SET_ONE_REG, PSCI_VERSION = 0x10003) = -1 EINVAL"
    # Every call before the failing one succeeded, and the source was read first.
    assert all(c.errno == 0 for c in calls[:-1])
    first_get = next(c for c in calls if c.ioctl == "KVM_GET_ONE_REG")
    assert first_get.release == "v6.13"


def test_trace_counts_one_get_and_one_set_per_register(four):
    with trace.record() as calls:
        m = spec.migrate(four, parse_strategy("upstream"), parse_vmm("firecracker"), 2, 3)
    assert m.outcome != "refused"
    gets = [c for c in calls if c.vm == 0 and c.ioctl == "KVM_GET_ONE_REG"]
    sets = [c for c in calls if c.vm == 1 and c.ioctl == "KVM_SET_ONE_REG"]
    # Firecracker writes back exactly what it read (DESIGN.md 3).
    assert [(c.reg, c.value) for c in gets] == [(c.reg, c.value) for c in sets]


# -- evidence -----------------------------------------------------------------------------


@pytest.mark.parametrize("n,start", [(4, 0), (7, 3), (5, 4)])
def test_pair_mask_counts(n, start):
    m = n - start
    for direction in ("forward", "backward"):
        assert measures.pair_mask(n, direction, start).sum() == m * (m - 1) // 2


def test_register_era_shares_of_a_grid_equal_the_scorecard_since_registers_from(four):
    start = four.registers_from
    card = hcsim.scorecard(four, "qemu", ["raz-wi"], since=four.releases[start])
    grid = hcsim.evaluate(four, "raz-wi", "qemu").codes
    for direction, prefix in (("forward", "fwd"), ("backward", "bwd")):
        era = hcsim.shares(grid, direction, start)
        assert era == {o: card.loc[0, f"{prefix}_{o}"] for o in hcsim.OUTCOMES}
    assert hcsim.silent_loss(grid, start) == card.loc[0, "silent_loss"]


def test_scorecard_is_shown_as_percentages_and_bytes(four):
    shown = narrate.scorecard(hcsim.scorecard(four, "qemu", ["upstream", "wide"]))
    assert shown.loc[0, "fwd_preserved"].endswith("%")
    assert shown.loc[1, "bytes_per_vcpu"] == "-"          # wide: QEMU cannot handle U2048


# -- montecarlo ----------------------------------------------------------------------------


def test_mean_interval_matches_the_normal_formula():
    mean, lo, hi = montecarlo.mean_interval([0.0, 1.0, 0.0, 1.0])
    half = montecarlo.Z95 * math.sqrt(1 / 3) / 2        # sd (ddof=1) = sqrt(1/3), n = 4
    assert (mean, lo, hi) == pytest.approx((0.5, 0.5 - half, 0.5 + half))
    assert montecarlo.mean_interval([0.3]) == (0.3, 0.3, 0.3)


def test_percentile_interval_ignores_never():
    mid, lo, hi = montecarlo.percentile_interval([*range(101), math.inf], level=0.9)
    assert (mid, lo, hi) == pytest.approx((50, 5, 95))


@pytest.mark.parametrize("seed", range(6))
def test_vmm_lag_model(seed):
    h = synthetic.generate(releases=30, rate=0.5, seed=seed)
    lags = [0, 2, 8, None]
    up = montecarlo.lagged_codes(h, "upstream", lags)
    assert np.array_equal(up[None], evidence.codes(h, "upstream", "qemu")[0])
    changed = [montecarlo.era_rates(up[lag], h)["fwd_changed"] for lag in lags]
    finite = [c for c in changed if not math.isnan(c)]
    assert finite == sorted(finite)                  # a longer lag never helps
    # Inside a reservation there is no new register, so lag cannot matter.
    if parse_strategy("raz-einval").layout(h).exhaustion() is None:
        ours = montecarlo.lagged_codes(h, "raz-einval", lags)
        for lag in lags:
            assert montecarlo.era_rates(ours[lag], h)["fwd_changed"] in (0.0,) or \
                math.isnan(montecarlo.era_rates(ours[lag], h)["fwd_changed"])


def test_exhaustion_after_counts_from_registers_from():
    # 64 services at r1, one more at r3: one reserved register overflows at r3.
    body = "\n".join(f'[[service]]\nname = "S{k}"\nspace = "std"\nintroduced = "r1"\n'
                     for k in range(64))
    h = make('releases = ["r0", "r1", "r2", "r3"]\nregisters_from = "r1"\n' + body +
             '[[service]]\nname = "LAST"\nspace = "std"\nintroduced = "r3"\n')
    assert montecarlo.exhaustion_after(h, "raz-einval:ranges=1") == 2.0
    assert montecarlo.exhaustion_after(h, "raz-einval:ranges=2") == math.inf


# -- plots and narrate ------------------------------------------------------------------------


def test_outcome_grid_from_migrations_equals_engine_codes(four):
    migrations = evaluate(four, parse_strategy("raz-wi"), parse_vmm("qemu"),
                          backend="spec").migrations()
    grid = plots.outcome_grid(migrations, four.releases)
    assert np.array_equal(grid, evidence.codes(four, "raz-wi", "qemu")[0])


def test_heatmap_has_one_legend_entry_per_outcome(four):
    ax = plots.heatmap(evidence.codes(four, "upstream", "qemu")[0], four.releases)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == list(OUTCOMES)
    assert ax.get_xlabel() == "destination release" and ax.get_ylabel() == "source release"
    fig = plots.heatmaps({s: evidence.codes(four, s, "qemu")[0] for s in ("upstream", "raz-wi")},
                         four.releases, ncols=2)
    assert len(fig.legends) == 1
    plt.close("all")


def test_palette_is_distinct_in_greyscale():
    from matplotlib.colors import to_rgb

    def lightness(color):
        r, g, b = to_rgb(color)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    values = sorted(lightness(plots.COLORS[o]) for o in OUTCOMES
                    if o not in plots.HATCHES)   # hatched classes are told apart by hatch
    assert all(b - a > 0.05 for a, b in zip(values, values[1:]))


def test_narrate_table_escapes_pipes():
    md = narrate.table(["a", "b"], [("x|y", 1)]).data
    assert "x\\|y" in md and md.count("\n") == 2
    assert narrate.pct(0.1234) == "12.3%"


def test_tally_survival_and_ranking_say_what_the_cases_say():
    from hcsim.frontends import narrate

    assert narrate.tally({1: True, 2: True, 3: True}) == "holds in all 3 seeds"
    assert narrate.tally({"a": False, "b": False}, "hosts") == "does not hold in either of the 2 hosts"
    mixed = narrate.tally({k: k % 3 != 0 for k in range(1, 10)})
    assert mixed == "mixed: holds in 6 of 9 seeds, not in 3, 6, 9"
    assert narrate.survival({"x": True, "y": True}) == "survives all 2"
    assert narrate.survival({"x": True, "y": False, "z": True}) == \
        "fragile: holds by default, fails under y"
    assert narrate.ranking({"a": 0.1, "b": 0.3, "c": 0.1}) == "b 30.0% > a = c 10.0%"
    assert narrate.ci([0.1, 0.2, 0.3]).startswith("20.0% [")


def test_report_style_makes_small_labels_9_pt_and_colours_okabe_ito():
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties

    from hcsim.frontends import plots

    with plt.rc_context():
        plots.report_style()
        assert FontProperties(size="small").get_size_in_points() >= 9
        assert plt.rcParams["axes.prop_cycle"].by_key()["color"][:3] == list(plots.PALETTE[:3])
        ax = plots.seed_intervals(
            __import__("hcsim").over_seeds(["upstream"], "qemu", range(3), ["silent_loss"]),
            ["silent_loss"])
        assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= plots.MIN_FONT
        plt.close("all")
