"""Matplotlib figures for the notebooks and the command line.

Every function takes data and an optional :class:`matplotlib.axes.Axes`, draws
one message, and returns the Axes (or the Figure for multi-panel figures); no
function calls ``plt.show()``.  Figures are meant to be read in print: axes are
labelled with units, and the outcome palette is colour-blind safe (Okabe-Ito
hues) with lightness that falls from ``preserved`` to ``unsupported``, so the
classes stay apart in greyscale.  The two silent-loss classes, ``lost`` and
``mixed``, are also hatched, so they survive a black-and-white printer.

One style serves every figure (:func:`styled`): every text at least
:data:`MIN_FONT` points at the figure's saved size, series coloured from the
Okabe-Ito palette (:data:`PALETTE`) and also told apart by line style,
marker or hatch, so no meaning rests on colour alone.

Outcome data is accepted in any of the forms hcsim produces: a list of
:class:`~hcsim.evaluation.outcomes.Migration`, a :class:`pandas.DataFrame` with ``src``,
``dst`` (release indices or names) and ``outcome`` columns, or an ``n x n``
array of outcome codes (indices into :data:`hcsim.evaluation.outcomes.OUTCOMES`, -1 for
"not evaluated").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text

from hcsim.evaluation.outcomes import CODES, DIRECTIONS, OUTCOMES, SHARE_PREFIX

#: One colour per outcome, in the order of :data:`hcsim.evaluation.outcomes.OUTCOMES`.
#: CIE L* (greyscale lightness): 93, 70, 54, 61, 46, 21.
COLORS = {
    "preserved": "#D9F0D3",    # very light green: nothing to see
    "gained": "#56B4E9",       # Okabe-Ito sky blue
    "lost": "#D55E00",         # Okabe-Ito vermillion, hatched
    "mixed": "#CC79A7",        # Okabe-Ito reddish purple, hatched
    "refused": "#0072B2",      # Okabe-Ito blue
    "unsupported": "#333333",  # near black
}
#: Hatches that keep the silent-loss classes apart in greyscale.
HATCHES = {"lost": "xxxx", "mixed": "////"}
#: Colour of "not evaluated" cells.
MISSING = "#FFFFFF"

#: Smallest size (points) of any text of a figure: labels, ticks, legends, titles.
MIN_FONT = 9.0
#: Okabe-Ito, the colour-blind safe palette (Okabe & Ito 2008), yellow left out
#: (too light on white paper): series colours, in order.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000")
#: Line styles and markers that keep series apart without colour (greyscale print).
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = "osD^v<>ph*"
#: Hatches of stacked areas whose colour carries meaning.
AREA_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
#: The rc settings every figure is drawn under (:func:`styled`).
STYLE = {
    "font.size": 10.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 10.0,
    "xtick.labelsize": MIN_FONT,
    "ytick.labelsize": MIN_FONT,
    "legend.fontsize": MIN_FONT,
    "legend.title_fontsize": MIN_FONT,
    "figure.titlesize": 12.0,
    "axes.prop_cycle": cycler(color=PALETTE),
}

_Drawn = TypeVar("_Drawn", Axes, Figure)


def readable(fig: Figure) -> Figure:
    """Raise every text of ``fig`` to at least :data:`MIN_FONT` points.

    Tick labels are made lazily when the figure is drawn, so the axes'
    tick parameters are set too, not only the texts that exist now.
    """
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = axis.get_ticklabels(which="both")
            if not labels or min(t.get_fontsize() for t in labels) < MIN_FONT:
                ax.tick_params(axis=name, which="both", labelsize=MIN_FONT)
    for text in fig.findobj(Text):
        if text.get_fontsize() < MIN_FONT:
            text.set_fontsize(MIN_FONT)
    return fig


def styled(draw: Callable[..., _Drawn]) -> Callable[..., _Drawn]:
    """Decorator: draw under :data:`STYLE`, then make every text :func:`readable`.

    Every public drawing function of this module carries it; a function
    added later should too (tests/test_plots_style.py checks).
    """
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            out = draw(*args, **kwargs)
            readable(out if isinstance(out, Figure) else out.figure)
        return out

    wrapper.styled = True
    return wrapper


def coinciding(series: Mapping[str, object]) -> dict[str, object]:
    """Series with equal values merged under one label, ``"a = b = c"``.

    Lines that coincide hide each other; one line whose legend names every
    label says so instead.  Order: first appearance.
    """
    merged: dict[str, list] = {}
    for label, values in series.items():
        key = repr(list(values) if isinstance(values, (list, tuple, np.ndarray)) else values)
        merged.setdefault(key, [values, []])[1].append(label)
    return {" = ".join(labels): values for values, labels in merged.values()}



def outcome_cmap() -> tuple[ListedColormap, BoundaryNorm]:
    """Colormap and norm mapping outcome codes 0..5 (and -1: missing) to colours."""
    cmap = ListedColormap([MISSING] + [COLORS[o] for o in OUTCOMES])
    norm = BoundaryNorm(np.arange(-1.5, len(OUTCOMES)), cmap.N)
    return cmap, norm


def legend_handles() -> list[Patch]:
    """One patch per outcome, in :data:`OUTCOMES` order, hatched as in the maps."""
    return [Patch(facecolor=COLORS[o], edgecolor="black", linewidth=0.5,
                  hatch=HATCHES.get(o), label=o) for o in OUTCOMES]


def outcome_grid(data, releases: Sequence[str]) -> np.ndarray:
    """An ``n x n`` array of outcome codes (rows: source, columns: destination).

    Parameters
    ----------
    data : migrations, a DataFrame with ``src``/``dst``/``outcome``, or an array.
    releases : release names of the history, oldest first.
    """
    n = len(releases)
    if isinstance(data, np.ndarray):
        if data.shape != (n, n):
            raise ValueError(f"outcome grid: expected shape {(n, n)}, got {data.shape}")
        return data.astype(int)
    index = {r: k for k, r in enumerate(releases)}
    grid = np.full((n, n), -1, dtype=int)
    if hasattr(data, "itertuples"):
        rows = ((r.src, r.dst, r.outcome) for r in data.itertuples(index=False))
    else:
        rows = ((m.src, m.dst, m.outcome) for m in data)
    for src, dst, outcome in rows:
        s = index[src] if isinstance(src, str) else int(src)
        d = index[dst] if isinstance(dst, str) else int(dst)
        grid[s, d] = CODES[outcome]
    return grid


def _ticks(ax: Axes, releases: Sequence[str], every: int | None) -> None:
    n = len(releases)
    step = every or max(1, int(np.ceil(n / 12)))
    pos = list(range(0, n, step))
    ax.set_xticks(pos, [releases[k] for k in pos], rotation=90)
    ax.set_yticks(pos, [releases[k] for k in pos])


@styled
def heatmap(data, releases: Sequence[str], ax: Axes | None = None,
            title: str | None = None, legend: bool = True,
            tick_every: int | None = None) -> Axes:
    """Outcome of every ordered release pair, one colour per outcome.

    Rows are the source release (oldest at the top), columns the destination,
    so the upper triangle is forward migration and the lower one backward.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6))
    grid = outcome_grid(data, releases)
    cmap, norm = outcome_cmap()
    n = len(releases)
    ax.imshow(grid, cmap=cmap, norm=norm, interpolation="nearest",
              extent=(-0.5, n - 0.5, n - 0.5, -0.5))
    for name, hatch in HATCHES.items():
        for s, d in zip(*np.nonzero(grid == CODES[name])):
            ax.add_patch(Rectangle((d - 0.5, s - 0.5), 1, 1, fill=False,
                                   hatch=hatch, linewidth=0, edgecolor="black"))
    ax.plot([-0.5, n - 0.5], [-0.5, n - 0.5], color="black", linewidth=0.4)
    _ticks(ax, releases, tick_every)
    ax.set_xlabel("destination release")
    ax.set_ylabel("source release")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(handles=legend_handles(), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  frameon=False)
    return ax


@styled
def heatmaps(panels: Mapping[str, object], releases: Sequence[str], ncols: int = 3,
             title: str | None = None, size: float = 3.2,
             tick_every: int | None = None) -> Figure:
    """Several outcome maps of one history side by side, with one shared legend."""
    names = list(panels)
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.6, size * nrows + 0.6),
                             squeeze=False, layout="constrained")
    for ax, name in zip(axes.flat, names):
        heatmap(panels[name], releases, ax=ax, title=name, legend=False,
                tick_every=tick_every)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.legend(handles=legend_handles(), loc="outside right center", frameon=False,
               title="outcome")
    if title:
        fig.suptitle(title)
    return fig


@styled
def share_bars(shares: Mapping[str, Mapping[str, Mapping[str, float]]],
               ax: Axes | None = None, title: str | None = None) -> Axes:
    """Forward and backward outcome shares, one pair of stacked bars per label.

    ``shares[label][direction][outcome]`` is a fraction (0..1), as
    :func:`hcsim.evaluation.measures.shares` returns; direction is forward or backward.
    """
    labels = list(shares)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.55 * len(labels) * 2 + 1.2))
    ypos, names = [], []
    for k, label in enumerate(labels):
        for j, direction in enumerate(DIRECTIONS):
            ypos.append(k * 2.6 + j)
            names.append(f"{label}  {SHARE_PREFIX[direction]}")
    left = np.zeros(len(ypos))
    for outcome in OUTCOMES:
        widths = np.array([100 * shares[label][direction].get(outcome, 0.0)
                           for label in labels for direction in DIRECTIONS])
        ax.barh(ypos, widths, left=left, height=0.85, color=COLORS[outcome],
                hatch=HATCHES.get(outcome), edgecolor="black", linewidth=0.4)
        left += widths
    ax.set_yticks(ypos, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of ordered release pairs (%)")
    ax.legend(handles=legend_handles(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    if title:
        ax.set_title(title)
    return ax


@styled
def cost_vs_vcpus(bytes_per_vcpu: Mapping[str, float | None], vcpus: Sequence[int],
                  ax: Axes | None = None, floor_bytes: float | None = None,
                  title: str | None = None,
                  ylabel: str = "hypercall/firmware register bytes per VM (log)") -> Axes:
    """Bytes per VM (log scale) against the number of vCPUs, one line per label.

    Every VMM saves the hypercall registers once per vCPU, so bytes per VM
    grow linearly with vCPUs; ``floor_bytes`` (the information floor, once
    per VM) is drawn flat for contrast.  Labels whose cost is None (the VMM
    cannot handle the registers) are left out; labels of equal cost share one
    line, whose legend entry names them all (:func:`coinciding`).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    x = np.asarray(vcpus, dtype=float)
    drawn = {k: v for k, v in bytes_per_vcpu.items() if v is not None}
    for k, (label, per_vcpu) in enumerate(coinciding(drawn).items()):
        ax.plot(x, per_vcpu * x, marker=MARKERS[k % len(MARKERS)], markersize=4,
                linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.2, label=label)
    if floor_bytes is not None:
        ax.plot(x, np.full_like(x, floor_bytes), color="black", linestyle="--",
                linewidth=1.0, label="information floor (per VM)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("vCPUs per VM")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    return ax


@styled
def cost_vs_release(series: Mapping[str, Sequence[float | None]], releases: Sequence[str],
                    ax: Axes | None = None, ylabel: str = "bytes per vCPU",
                    log: bool = False, floor: Sequence[float] | None = None,
                    title: str | None = None, tick_every: int | None = None) -> Axes:
    """A cost measure per release, one step line per label (None: not drawn).

    Labels with equal values at every release share one line, whose legend
    entry names them all (:func:`coinciding`).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.8))
    x = np.arange(len(releases))
    for k, (label, values) in enumerate(coinciding(series).items()):
        y = np.array([np.nan if v is None else float(v) for v in values])
        ax.step(x, y, where="post", linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.4,
                label=label)
    if floor is not None:
        ax.step(x, np.asarray(floor, dtype=float), where="post", color="black",
                linewidth=0.8, label="information floor")
    if log:
        ax.set_yscale("log")
    step = tick_every or max(1, int(np.ceil(len(releases) / 16)))
    ax.set_xticks(x[::step], [releases[k] for k in x[::step]], rotation=90)
    ax.set_xlabel("release")
    ax.set_ylabel(ylabel)
    ax.grid(True, linewidth=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return ax


@styled
def rates_with_intervals(x: Sequence[float],
                         estimates: Mapping[str, tuple[Sequence[float], Sequence[float],
                                                       Sequence[float]]],
                         ax: Axes | None = None, xlabel: str = "", ylabel: str = "",
                         percent: bool = True, logx: bool = False,
                         title: str | None = None) -> Axes:
    """Point estimates with interval bars, one series per label.

    ``estimates[label] = (value, low, high)``, each aligned with ``x``.  Series
    are nudged sideways (multiplicatively on a log axis) so bars do not hide
    each other.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    scale = 100.0 if percent else 1.0
    n = len(estimates)
    xs = np.asarray(x, dtype=float)
    for k, (label, (value, low, high)) in enumerate(estimates.items()):
        v, lo, hi = (scale * np.asarray(a, dtype=float) for a in (value, low, high))
        offset = (k - (n - 1) / 2) * 0.012
        if logx:
            at = xs * np.exp(offset * np.log(xs.max() / xs.min() if xs.min() > 0 else 10.0))
        else:
            at = xs + offset * ((xs.max() - xs.min()) if len(xs) > 1 else 1.0)
        ax.errorbar(at, v, yerr=[v - lo, hi - v], marker=MARKERS[k % len(MARKERS)],
                    linestyle=LINESTYLES[k % len(LINESTYLES)], markersize=4, capsize=3,
                    linewidth=1.0, label=label)
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{t:g}" for t in xs])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (%)" if percent and ylabel else ""))
    ax.grid(True, linewidth=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return ax


@styled
def distributions(samples: Mapping[str, Sequence[float]], ax: Axes | None = None,
                  interval: float = 0.9, xlabel: str = "", bins: int | Sequence[float] = 30,
                  title: str | None = None) -> Axes:
    """Histograms of Monte Carlo samples with the central ``interval`` marked.

    Each label gets a step histogram; its median (solid) and the bounds of
    its central interval (dotted) are drawn as vertical lines; histogram
    outlines also differ in line style.  Non-finite samples (e.g. "never
    exhausted") are left out; the legend says how many.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    finite = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
    pooled = np.concatenate([v[np.isfinite(v)] for v in finite.values()] or [np.zeros(0)])
    edges = np.histogram_bin_edges(pooled if pooled.size else [0.0, 1.0], bins=bins)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    tail = (1.0 - interval) / 2
    for k, (label, values) in enumerate(finite.items()):
        ok = values[np.isfinite(values)]
        color = cycle[k % len(cycle)]
        missing = values.size - ok.size
        text = label + (f" ({missing} of {values.size} never)" if missing else "")
        ax.hist(ok, bins=edges, histtype="step", linewidth=1.4, color=color, label=text,
                linestyle=("-", "--", "-.")[k % 3])
        if ok.size:
            lo, mid, hi = np.quantile(ok, [tail, 0.5, 1 - tail])
            ax.axvline(mid, color=color, linewidth=1.0)
            for bound in (lo, hi):
                ax.axvline(bound, color=color, linewidth=0.8, linestyle=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("futures (count)")
    ax.grid(True, linewidth=0.3)
    ax.legend(frameon=False, title=f"median (solid), {interval:.0%} interval (dotted)")
    if title:
        ax.set_title(title)
    return ax


@styled
def fleet_timeline(timeline, hosts=None, metrics: Sequence[str] = ("refused", "broken_guests"),
                   title: str | None = None) -> Figure:
    """A fleet rollout over time (:func:`hcsim.analyses.fleet.simulate` records).

    ``timeline`` has one row per (strategy, vmm, config, wave) with cumulative
    counters; each of ``metrics`` gets its own panel, one step line per run
    (strategy / VMM / configuration, one colour and line style each) against the wave date,
    so runs with equal counts in different metrics do not hide each other.
    With ``hosts`` (one row per (wave, kernel) with a host count) a top panel
    stacks hosts per kernel.  Rollback waves are shaded in every panel.
    """
    from datetime import timedelta

    import matplotlib.dates as mdates
    import pandas as pd

    top = hosts is not None and len(hosts) > 0
    rows = int(top) + len(metrics)
    fig, axes = plt.subplots(rows, 1, figsize=(8.0, 2.4 * rows + 0.8), sharex=True,
                             squeeze=False, layout="constrained")
    axes = axes[:, 0]
    if top:
        last = hosts.groupby("date")["wave"].transform("max")     # state at the end of a day
        wide = hosts[hosts["wave"] == last].pivot_table(
            index="date", columns="kernel", values="hosts", aggfunc="sum", sort=False).fillna(0)
        x = [*wide.index, wide.index[-1] + timedelta(days=7)]   # show the last state
        wide = pd.concat([wide, wide.iloc[[-1]]])
        axes[0].stackplot(x, *[wide[k].to_numpy() for k in wide.columns],
                          labels=list(wide.columns), step="post", alpha=0.85,
                          hatch=[AREA_HATCHES[k % len(AREA_HATCHES)]
                                 for k in range(len(wide.columns))])
        axes[0].set_ylabel("hosts")
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                       title="kernel")
    keys = ["strategy", "vmm", "config"]
    runs = list(timeline.groupby(keys, sort=False))
    for ax, metric in zip(axes[int(top):], metrics):
        for k, (key, run) in enumerate(runs):
            dates = [*run["date"], run["date"].iloc[-1] + timedelta(days=7)]
            values = np.append(run[metric].to_numpy(), run[metric].iloc[-1])
            ax.step(dates, values, where="post", color=PALETTE[k % len(PALETTE)],
                    linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.4,
                    label=" / ".join(key))
        ax.set_ylabel(metric.replace("_", " ") + "\n(cumulative)")
        ax.grid(True, linewidth=0.3)
    if runs:
        axes[int(top)].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                              title="strategy / VMM / config")
    back = timeline.drop_duplicates("wave")
    for date in back.loc[back["rollback"], "date"]:
        for a in axes:
            a.axvspan(date - timedelta(days=3), date + timedelta(days=3), color="grey",
                      alpha=0.25, linewidth=0)
    axes[-1].set_xlabel("date")
    axes[-1].xaxis.set_major_locator(mdates.MonthLocator())
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%b"))
    if title:
        fig.suptitle(title)
    return fig


# -- over many seeds (notebooks 02, 05, 07) -------------------------------------------

@styled
def seed_intervals(summary, measures: Sequence[str], strategies: Sequence[str] | None = None,
                   vmm: str = "qemu", labels: Mapping[str, str] | None = None,
                   ax: Axes | None = None, title: str | None = None) -> Axes:
    """Per strategy (rows) and measure (colours): the mean over seeds of an
    :func:`hcsim.over_seeds` summary, its t interval (thick bar) and the range
    of the seeds (thin line, min..max), in percent."""
    s = summary[summary["vmm"] == vmm]
    names = list(strategies) if strategies is not None else list(dict.fromkeys(s["strategy"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 0.55 * len(names) + 1.6), layout="constrained")
    markers = "osD^v<>"
    for k, m in enumerate(measures):
        rows = s[s["measure"] == m].set_index("strategy").reindex(names)
        y = np.arange(len(names)) + (k - (len(measures) - 1) / 2) * 0.22
        color = PALETTE[k % len(PALETTE)]
        ax.hlines(y, 100 * rows["min"], 100 * rows["max"], color=color, linewidth=0.8)
        ax.errorbar(100 * rows["mean"], y, xerr=[100 * (rows["mean"] - rows["low"]),
                                                 100 * (rows["high"] - rows["mean"])],
                    fmt=markers[k % len(markers)], color=color, markersize=6, capsize=3,
                    elinewidth=2.2, label=(labels or {}).get(m, m))
    ax.set_yticks(np.arange(len(names)), names, fontsize=MIN_FONT + 1)
    ax.invert_yaxis()
    ax.set_xlabel("% of pairs: mean over seeds, 95% t interval (bar), seed range (line)",
                  fontsize=MIN_FONT + 1)
    ax.tick_params(axis="x", labelsize=MIN_FONT + 1)
    ax.grid(True, axis="x", linewidth=0.3)
    ax.legend(fontsize=MIN_FONT + 1, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    if title:
        ax.set_title(title, fontsize=MIN_FONT + 2)
    return ax


@styled
def lag_curves(lags: Sequence[int], estimates: Mapping[str, tuple[Sequence[float], ...]],
               never: Mapping[str, tuple[float, float, float]], ax: Axes | None = None,
               xlabel: str = "", ylabel: str = "", title: str | None = None) -> Axes:
    """Rates against a VMM lag on a true linear axis (``estimates[label] = (value,
    low, high)`` aligned with ``lags``), with a VMM that never updates drawn as a
    dashed horizontal line and its interval as a band, not as one more tick."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.2, 4.2), layout="constrained")
    xs = np.asarray(lags, dtype=float)
    markers = "osD^v"
    for k, (label, (v, lo, hi)) in enumerate(estimates.items()):
        color = PALETTE[k % len(PALETTE)]
        v, lo, hi = (100 * np.asarray(a, dtype=float) for a in (v, lo, hi))
        at = xs + (k - (len(estimates) - 1) / 2) * 0.08
        ax.errorbar(at, v, yerr=[v - lo, hi - v], marker=markers[k % len(markers)],
                    color=color, markersize=5, capsize=3, linewidth=1.2, label=label)
        if label in never:
            n, nlo, nhi = (100 * x for x in never[label])
            ax.axhline(n, color=color, linestyle="--", linewidth=1.0,
                       label=f"{label}, never updated")
            ax.axhspan(nlo, nhi, color=color, alpha=0.12, linewidth=0)
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.tick_params(labelsize=MIN_FONT + 1)
    ax.set_xlabel(xlabel, fontsize=MIN_FONT + 1)
    ax.set_ylabel(ylabel + (" (%)" if ylabel else ""), fontsize=MIN_FONT + 1)
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize=MIN_FONT, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    if title:
        ax.set_title(title, fontsize=MIN_FONT + 2)
    return ax


@styled
def frontier(table, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Safety against pickup, one point per strategy (a
    :func:`hcsim.analyses.dominance.frontier` table): mean safety rank of the
    pairs (lower is safer) on x, new-VM pickup on y; strategies on the
    frontier filled and joined, the others hollow."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 5.0), layout="constrained")
    t = table.sort_values("mean rank")
    for k, row in enumerate(t.itertuples()):
        color = PALETTE[k % len(PALETTE)]
        ax.plot(row._2, 100 * row.pickup, MARKERS[k % len(MARKERS)], markersize=9,
                color=color, markerfacecolor=color if row.on_frontier else "white",
                label=row.strategy + (" (frontier)" if row.on_frontier else ""))
    on = t[t.on_frontier]
    ax.plot(on["mean rank"], 100 * on["pickup"], "-", color="#555555", linewidth=1, zorder=0)
    ax.set_xlabel("mean safety rank of a migration (0 preserved, 1 loud, 2 silent gain, "
                  "3 silent loss)")
    ax.set_ylabel("new-VM pickup, % of services")
    ax.grid(True, linewidth=0.3)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    if title:
        ax.set_title(title)
    return ax

def report_style() -> None:
    """Matplotlib defaults for the figures of a report: a base font of 11 pt, so that
    ``fontsize="small"`` labels are at least 9 pt, and the :data:`PALETTE` colour
    cycle for series drawn with default colours (``C0``, ``C1``, ...)."""
    plt.rcParams.update({"font.size": 11.0,
                         "axes.prop_cycle": plt.cycler(color=list(PALETTE))})
