"""Every figure is readable in print: text at least 9 pt, series apart without colour.

Each public drawing function of :mod:`hcsim.frontends.plots` is rendered on
small data; after a full draw (tick labels are made lazily), no text artist
of the figure may be smaller than :data:`plots.MIN_FONT`.
"""

from __future__ import annotations

import inspect
from datetime import date, timedelta

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from hcsim import OUTCOMES  # noqa: E402
from hcsim.frontends import plots  # noqa: E402

RELEASES = [f"r{k}" for k in range(6)]


def small_texts(fig: Figure) -> list[tuple[str, float]]:
    """Visible, non-empty texts of ``fig`` smaller than ``MIN_FONT``, after a draw."""
    fig.canvas.draw()
    return [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text() and t.get_fontsize() < plots.MIN_FONT]


def _codes() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, len(OUTCOMES), size=(len(RELEASES), len(RELEASES)))


def _timeline() -> tuple[pd.DataFrame, pd.DataFrame]:
    start = date(2026, 1, 5)
    rows, hosts = [], []
    for run in ("default", "baseline"):
        for w in range(4):
            rows.append({"strategy": "upstream", "vmm": "qemu", "config": run, "wave": w,
                         "date": start + timedelta(days=7 * w), "rollback": w == 3,
                         "refused": w * 3, "broken_guests": w})
    for w in range(4):
        for kernel, n in (("v6.1", 4 - w), ("v6.12", w)):
            hosts.append({"date": start + timedelta(days=7 * w), "wave": w,
                          "kernel": kernel, "hosts": n})
    return pd.DataFrame(rows), pd.DataFrame(hosts)


def _summary() -> pd.DataFrame:
    return pd.DataFrame([{"vmm": "qemu", "strategy": st, "measure": m, "mean": 0.3,
                          "low": 0.25, "high": 0.35, "min": 0.2, "max": 0.4}
                         for st in ("upstream", "raz-einval") for m in ("fwd", "bwd")])


def _draw(name: str):
    shares = {"upstream": {"forward": {"preserved": 0.6, "refused": 0.4},
                           "backward": {"lost": 0.2, "refused": 0.8}}}
    draw = {
        "heatmap": lambda: plots.heatmap(_codes(), RELEASES, title="a heatmap"),
        "heatmaps": lambda: plots.heatmaps({"a": _codes(), "b": _codes(), "c": _codes()},
                                           RELEASES, title="three maps"),
        "share_bars": lambda: plots.share_bars(shares, title="shares"),
        "cost_vs_vcpus": lambda: plots.cost_vs_vcpus(
            {"a": 128, "b": 128, "c": 32832, "d": None}, [1, 2, 4, 8], floor_bytes=1,
            title="per VM"),
        "cost_vs_release": lambda: plots.cost_vs_release(
            {"a": [0, 16, 16, 64, 64, 128], "b": [0, 16, 16, 64, 64, 128],
             "c": [0, 16, 16, 128, 128, 128]}, RELEASES, log=True, floor=[0, 1, 1, 1, 1, 1],
            title="per release"),
        "rates_with_intervals": lambda: plots.rates_with_intervals(
            [1, 10, 100], {"a": ([0.1, 0.2, 0.3], [0.05, 0.1, 0.2], [0.2, 0.3, 0.4]),
                           "b": ([0.2, 0.2, 0.2], [0.1, 0.1, 0.1], [0.3, 0.3, 0.3])},
            xlabel="rate", ylabel="refused", logx=True, title="rates"),
        "distributions": lambda: plots.distributions(
            {"a": [1.0, 2.0, 2.0, 3.0, np.inf], "b": [2.0, 3.0, 4.0]}, xlabel="releases",
            title="samples"),
        "fleet_timeline": lambda: plots.fleet_timeline(*_timeline(), title="a fleet"),
        "seed_intervals": lambda: plots.seed_intervals(_summary(), ["fwd", "bwd"],
                                                       title="over seeds"),
        "lag_curves": lambda: plots.lag_curves(
            [0, 1, 2], {"a": ([0.1, 0.2, 0.3], [0.05, 0.1, 0.2], [0.2, 0.3, 0.4])},
            {"a": (0.5, 0.4, 0.6)}, xlabel="lag", ylabel="refused", title="lags"),
    }
    return draw[name]()


def _drawing_functions() -> list[str]:
    """Public functions of the module that return an Axes or a Figure."""
    return sorted(name for name, f in vars(plots).items()
                  if inspect.isfunction(f) and f.__module__ == plots.__name__
                  and not name.startswith("_") and name != "readable"
                  and str(inspect.signature(f).return_annotation) in ("Axes", "Figure"))


DRAWN = ["cost_vs_release", "cost_vs_vcpus", "distributions", "fleet_timeline", "heatmap",
         "heatmaps", "lag_curves", "rates_with_intervals", "seed_intervals", "share_bars"]


@pytest.mark.parametrize("name", DRAWN)
def test_every_text_is_at_least_nine_points(name):
    out = _draw(name)
    fig = out if isinstance(out, Figure) else out.figure
    assert small_texts(fig) == []
    plt.close("all")


def test_every_drawing_function_is_styled():
    # A drawing function added without @styled would draw in matplotlib's
    # defaults (legends and ticks under 9 pt, the tab10 palette).
    assert [n for n in _drawing_functions() if not getattr(getattr(plots, n), "styled", False)] \
        == []
    assert set(DRAWN) <= set(_drawing_functions())


def test_the_check_sees_small_text():
    fig, ax = plt.subplots()
    ax.set_title("tiny", fontsize=6)
    ax.legend(handles=plots.legend_handles(), fontsize="x-small")
    assert ("tiny", 6.0) in small_texts(fig)
    plots.readable(fig)
    assert small_texts(fig) == []
    plt.close(fig)


def test_series_colours_are_okabe_ito_and_lines_also_differ_in_style():
    ax = _draw("rates_with_intervals")
    lines = [c.lines[0] for c in ax.containers]
    assert [matplotlib.colors.to_hex(ln.get_color()).upper() for ln in lines] == \
        list(plots.PALETTE[:2])
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    plt.close("all")


def test_coinciding_lines_are_drawn_once_with_every_label():
    ax = _draw("cost_vs_vcpus")
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["a = b", "c", "information floor (per VM)"]
    ax = _draw("cost_vs_release")
    assert [ln.get_label() for ln in ax.get_lines()] == ["a = b", "c", "information floor"]
    plt.close("all")


def test_stacked_hosts_are_hatched():
    fig = _draw("fleet_timeline")
    hatches = [c.get_hatch() for c in fig.axes[0].collections]
    assert len(set(hatches)) == len(hatches) == 2
    plt.close("all")
