"""Sensitivity to the synthetic seed: every scorecard measure over many histories.

One synthetic history is one draw of a future; a claim such as "raz-einval
preserves more forward pairs than upstream" made on one seed may be an
accident of that draw.  :func:`over_seeds` scores the same strategies and
VMM policies on ``len(seeds)`` histories drawn with the same generator
parameters (:func:`hcsim.model.synthetic.generate`, seeds as given) and
returns, per (strategy, VMM, measure):

* ``mean`` and its **t interval** (``low``, ``high``): Student's t at
  ``level`` (default 95%) with ``n - 1`` degrees of freedom around the mean
  over seeds, ``mean +- t * sd / sqrt(n)``: where the mean of the futures
  lies (no resampling, so no extra randomness);
* ``p_low``, ``p_high``: the **percentile interval**, the central ``level``
  of the per-seed values themselves (how far one future strays), and
  ``min``, ``max``;
* ``seeds``: how many values entered.

``per_seed=True`` returns the values themselves (one row per seed, strategy,
VMM and measure), from which :func:`dominance` counts the seeds where one
strategy is never worse than another.

Measures (:data:`MEASURES`) are those of the scorecard
(:mod:`hcsim.evaluation.measures`), computed on the same outcome codes:
``fwd_<outcome>`` and ``bwd_<outcome>`` (share of forward / backward ordered
release pairs, forward = source older), ``silent_loss`` (lost or mixed
among all off-diagonal pairs); the same restricted to the register era
(both ends at or after ``registers_from``), prefixed ``era_``; ``pickup``
(share of the last release's services a default new VM gets) and
``exhausted`` (1 if the layout lists a new feature register after
``registers_from``, else 0).  The evaluation is the engine's
(:func:`hcsim.evaluation.backends.evaluate` with ``backend="auto"``), so 30
seeds x 6 strategies x 4 VMMs take about a second.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hcsim.analyses.montecarlo import mean_interval
from hcsim.errors import InputError
from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.measures import counts, new_vm_pickup
from hcsim.evaluation.outcomes import CODES, OUTCOMES, SILENT
from hcsim.model import strategies as strategies_mod
from hcsim.model import synthetic
from hcsim.model import vmm as vmm_mod
from hcsim.model.history import History

if TYPE_CHECKING:
    import pandas as pd

#: Share measures of one span of pairs (all pairs, or the register era).
_SHARES = tuple(f"{p}_{o}" for p in ("fwd", "bwd") for o in OUTCOMES) + ("silent_loss",)
#: Every measure :func:`over_seeds` knows, in table order.
MEASURES = _SHARES + tuple("era_" + m for m in _SHARES) + ("pickup", "exhausted")
#: Direction in which a measure is better: +1 higher, -1 lower, 0 neither
#: (``gained``: the guest sees services it did not boot with, harmless but
#: not the same view; ``pickup``, ``exhausted``: not a per-pair outcome).
BETTER = {m: (1 if m.endswith("preserved") else 0 if m.endswith("gained") else -1)
          for m in MEASURES}
BETTER.update(pickup=1, exhausted=-1)
#: The measures :func:`dominance` compares by default: safety and
#: availability of every pair, forward and backward.
SAFETY = ("fwd_preserved", "fwd_lost", "fwd_mixed", "fwd_refused", "fwd_unsupported",
          "bwd_preserved", "bwd_lost", "bwd_mixed", "bwd_refused", "bwd_unsupported",
          "silent_loss")
#: Most seeds one call takes.
MAX_SEEDS = 100_000


def _t_pdf(x: np.ndarray, dof: int) -> np.ndarray:
    c = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi)
    return c * (1 + x * x / dof) ** (-(dof + 1) / 2)


@functools.lru_cache(maxsize=64)
def t_quantile(level: float, dof: int) -> float:
    """Two-sided Student's t quantile: P(|T| <= q) = ``level`` for ``dof`` degrees.

    Computed without scipy: the density integrated by the trapezoid rule on
    a grid of step 2.5e-4 over [0, 50] and the integral inverted by one
    Newton step from the grid point (error below 1e-5 for dof >= 2 at
    levels up to 0.99; dof = 1 is exact).
    """
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    if dof < 1:
        raise InputError(f"a t interval needs at least 2 values, got {dof + 1}")
    if dof == 1:                       # Cauchy: exact
        return math.tan(math.pi * level / 2)
    hi = 50.0
    x = np.linspace(0.0, hi, 200_001)
    y = _t_pdf(x, dof)
    h = x[1] - x[0]
    cum = np.concatenate(([0.0], np.cumsum((y[:-1] + y[1:]) * h / 2)))
    k = int(np.searchsorted(cum, level / 2))
    if k >= len(cum):
        return math.inf
    q = x[k - 1] + (level / 2 - cum[k - 1]) / y[k - 1]
    return float(q)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean over finite values and its t interval.

    With one value the interval is the value itself; with none, NaNs.
    """
    n = int(np.isfinite(np.asarray(values, dtype=float)).sum())
    return mean_interval(values, t_quantile(level, n - 1) if n >= 2 else math.nan)


def _seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise InputError(f"seeds must be a list or range of integers, got {seeds!r}")
    out = []
    for s in seeds:
        out.append(synthetic.check_seed(s))
        if len(out) > MAX_SEEDS:
            raise InputError(f"more than {MAX_SEEDS:,} seeds")
    if not out:
        raise InputError("seeds: no seed given")
    if len(set(out)) != len(out):
        seen: set[int] = set()
        dup = next(s for s in out if s in seen or seen.add(s))
        raise InputError(f"seed {dup} given twice")
    return tuple(out)


def _measures(measures: Sequence[str] | str | None) -> tuple[str, ...]:
    if measures is None:
        return MEASURES
    chosen = (measures,) if isinstance(measures, str) else tuple(measures)
    for m in chosen:
        if m not in MEASURES:
            raise InputError(f"unknown measure {m!r} (known: {', '.join(MEASURES)})")
    if not chosen:
        raise InputError("measures: none given")
    return chosen


def _names(items: Sequence[str] | str | None, default: Sequence[str], parse, label: str
           ) -> tuple[Any, ...]:
    given = default if items is None else (items,) if isinstance(items, str) else tuple(items)
    if not given:
        raise InputError(f"no {label} given")
    parsed = tuple(parse(x) if isinstance(x, str) else x for x in given)
    keys = [getattr(p, "spec", None) or p.name for p in parsed]
    if len(set(keys)) != len(keys):
        raise InputError(f"{label} given twice: {keys!r}")
    return parsed


def _values(codes: np.ndarray, start: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for prefix, since in (("", 0), ("era_", start)):
        fwd, bwd = counts(codes, since)
        for p, row in (("fwd", fwd), ("bwd", bwd)):
            total = int(row.sum())
            for k, o in enumerate(OUTCOMES):
                out[f"{prefix}{p}_{o}"] = int(row[k]) / total if total else math.nan
        both = fwd + bwd
        total = int(both.sum())
        out[prefix + "silent_loss"] = (sum(int(both[CODES[o]]) for o in SILENT) / total
                                       if total else math.nan)
    return out


def seed_table(strategies: Sequence[str] | str | None = None,
             vmms: Sequence[str] | str | None = ("qemu",), seeds: Iterable[int] = range(30),
             measures: Sequence[str] | str | None = None, **generate_kwargs: Any
             ) -> pd.DataFrame:
    """One row per (seed, strategy, VMM, measure): ``value`` (see :func:`over_seeds`)."""
    import pandas as pd

    chosen = _measures(measures)
    seed_list = _seeds(seeds)
    sts = _names(strategies, strategies_mod.DEFAULTS, strategies_mod.parse, "strategy")
    policies = _names(vmms, tuple(vmm_mod.REGISTRY), vmm_mod.parse, "VMM")
    params = synthetic.params(**generate_kwargs)      # checked once, before any work
    want = set(chosen)
    rows: dict[str, list] = {"seed": [], "strategy": [], "vmm": [], "measure": [], "value": []}
    for seed in seed_list:
        history = params.history(seed)
        start = history.registers_from
        for st in sts:
            extra = {}
            if "pickup" in want:
                extra["pickup"] = new_vm_pickup(history, st)
            if "exhausted" in want:
                extra["exhausted"] = float(st.layout(history).exhaustion() is not None)
            for vmm in policies:
                o = evaluate(history, st, vmm, None, "auto", sets=False)
                values = _values(o.codes, start) | extra
                for m in chosen:
                    rows["seed"].append(seed)
                    rows["strategy"].append(st.spec)
                    rows["vmm"].append(vmm.name)
                    rows["measure"].append(m)
                    rows["value"].append(values[m])
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (strategy, VMM, measure) of a :func:`seed_table`: mean, t and
    percentile intervals at ``level``, min, max, seeds (order of first appearance)."""
    import pandas as pd

    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    out = []
    tail = (1 - level) / 2
    for (st, vmm, m), group in table.groupby(["strategy", "vmm", "measure"], sort=False):
        x = group["value"].to_numpy(float)
        x = x[np.isfinite(x)]
        mean, low, high = t_interval(x, level)
        if x.size:
            p_low, p_high = (float(v) for v in np.quantile(x, [tail, 1 - tail]))
            lo, hi = float(x.min()), float(x.max())
        else:
            p_low = p_high = lo = hi = math.nan
        out.append({"strategy": st, "vmm": vmm, "measure": m, "mean": mean, "low": low,
                    "high": high, "p_low": p_low, "p_high": p_high, "min": lo, "max": hi,
                    "seeds": int(x.size)})
    return pd.DataFrame(out)


def over_seeds(strategies: Sequence[str] | str | None = None,
               vmms: Sequence[str] | str | None = ("qemu",), seeds: Iterable[int] = range(30),
               measures: Sequence[str] | str | None = None, level: float = 0.95,
               per_seed: bool = False, **generate_kwargs: Any) -> pd.DataFrame:
    """Scorecard measures over many synthetic histories, with intervals.

    Parameters
    ----------
    strategies, vmms : list of str (or one str), optional
        Strategy specs (default: every strategy) and VMM policies (default
        ``qemu``).
    seeds : iterable of int
        Generator seeds, one history each (default ``range(30)``).
    measures : list of str, optional
        Names from :data:`MEASURES` (default: all).
    level : float
        Coverage of both intervals (default 0.95).
    per_seed : bool
        Return the per-seed values instead of the summary.
    **generate_kwargs
        Generator parameters, as :func:`hcsim.generate` (``releases``,
        ``rate``, ``space_registers``, ``bits``, drift rates...).

    Returns
    -------
    pandas.DataFrame
        Summary: ``strategy, vmm, measure, mean, low, high`` (t interval of
        the mean), ``p_low, p_high`` (central ``level`` of the seeds),
        ``min, max, seeds``.  With ``per_seed``: ``seed, strategy, vmm,
        measure, value``.

    Examples
    --------
    >>> t = over_seeds(["upstream"], "qemu", range(5), ["fwd_preserved"])
    >>> row = t.iloc[0]
    >>> bool(row["low"] <= row["mean"] <= row["high"]), int(row["seeds"])
    (True, 5)
    """
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    table = seed_table(strategies, vmms, seeds, measures, **generate_kwargs)
    return table if per_seed else summarise(table, level)


def dominance(table: pd.DataFrame, a: str, b: str, vmm: str | None = None,
              measures: Sequence[str] = SAFETY) -> dict[str, int]:
    """In how many seeds of a :func:`seed_table` ``a`` is never worse than ``b``.

    Per seed (and VMM, when ``vmm`` is None every VMM of the table must
    hold), ``a`` is *never worse* when on every measure it is at least as
    good in the direction of :data:`BETTER`, and *dominates* when it is
    also strictly better on one.  Returns ``seeds``, ``never_worse``,
    ``dominates``, ``equal`` (same on every measure) and ``worse`` (worse on
    some measure).
    """
    for m in measures:
        if m not in BETTER or BETTER[m] == 0:
            raise InputError(f"measure {m!r} has no better direction "
                             f"(known: {', '.join(k for k, v in BETTER.items() if v)})")
    for name in (a, b):
        if name not in set(table["strategy"]):
            raise InputError(f"strategy {name!r} is not in the table")
    t = table[table["measure"].isin(measures)]
    if vmm is not None:
        t = t[t["vmm"] == vmm]
    wide = t.pivot_table(index=["seed", "vmm", "measure"], columns="strategy",
                         values="value", aggfunc="first")
    sign = wide.index.get_level_values("measure").map(BETTER).to_numpy(float)
    diff = (wide[a].to_numpy(float) - wide[b].to_numpy(float)) * sign
    diff = np.where(np.abs(diff) < 1e-12, 0.0, diff)
    seeds = wide.index.get_level_values("seed").to_numpy()
    worse, better = {}, {}
    for s, d in zip(seeds, diff):
        worse[s] = worse.get(s, False) or bool(d < 0)
        better[s] = better.get(s, False) or bool(d > 0)
    n = len(worse)
    never = sum(not w for w in worse.values())
    dom = sum(not worse[s] and better[s] for s in worse)
    return {"seeds": n, "never_worse": never, "dominates": dom,
            "equal": never - dom, "worse": n - never}


def pivot(table: pd.DataFrame, measure: str, vmm: str) -> pd.DataFrame:
    """Values of one measure under one VMM from a :func:`seed_table`: seeds x strategies."""
    t = table[(table["measure"] == measure) & (table["vmm"] == vmm)]
    if t.empty:
        raise InputError(f"no values of {measure!r} under {vmm!r} in the table")
    return t.pivot(index="seed", columns="strategy", values="value")


#: The generator's layout assumptions (:mod:`hcsim.model.synthetic`), default first:
#: label -> generator keywords.
LAYOUTS = {f"{r}/{b}": {"space_registers": r, "bits": b}
           for b in synthetic.BITS for r in synthetic.SPACE_REGISTERS}


def over_layouts(strategies: Sequence[str] | str | None = None,
                 vmms: Sequence[str] | str | None = ("qemu",), seeds: Iterable[int] = range(30),
                 measures: Sequence[str] | str | None = None, **generate_kwargs: Any
                 ) -> pd.DataFrame:
    """:func:`seed_table` under every layout assumption of :data:`LAYOUTS`, the same
    seeds (the same draws: the assumptions change where bits go, not what
    arrives), with a ``layout`` column."""
    import pandas as pd

    clash = sorted(set(generate_kwargs) & {"space_registers", "bits"})
    if clash:
        raise InputError(f"over_layouts varies {clash[0]} itself")
    seed_list = _seeds(seeds)
    frames = []
    for label, kw in LAYOUTS.items():
        t = seed_table(strategies, vmms, seed_list, measures, **generate_kwargs, **kw)
        t.insert(0, "layout", label)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def fleet_over_seeds(seeds: Iterable[int] = range(30),
                     strategies: Sequence[str] = ("upstream", "raz-wi", "raz-einval"),
                     vmms: Sequence[str] = ("qemu",), hosts: int = 200, guests: int = 1000,
                     fleet_seed: int = 0, **generate_kwargs: Any) -> pd.DataFrame:
    """The rollout-and-rollback fleet of notebook 7 on one synthetic history per seed.

    Each history gets :func:`hcsim.analyses.fleet.scenario` along four releases
    of its register era (``registers_from``, then a third, two thirds and all
    of the way to the last release), rolled back one step and forward
    again, with ``hosts`` hosts and ``guests`` guests; both ``default`` and
    ``baseline`` configurations.  One row per (seed, strategy, VMM,
    configuration): the fleet summary columns and ``seed``.
    """
    import pandas as pd

    from hcsim.analyses import fleet

    params = synthetic.params(**generate_kwargs)
    frames = []
    for seed in _seeds(seeds):
        h = params.history(seed)
        inv, plan = fleet.scenario(h, era_path(h), hosts=hosts, guests=guests)
        s = fleet.simulate(h, inv, plan, list(strategies), list(vmms),
                           ("default", "baseline"), guests=guests, seed=fleet_seed).summary
        s.insert(0, "seed", seed)
        frames.append(s)
    return pd.concat(frames, ignore_index=True)


def era_path(history: History) -> list[str]:
    """Four releases of the register era: its first, a third, two thirds, its last
    (the rollout path of notebook 7's synthetic fleets)."""
    era = list(history.releases[history.registers_from:])
    if len(era) < 4:
        raise InputError(f"history {history.name!r}: the register era has {len(era)} "
                         "releases; a rollout path needs 4")
    return [era[k * (len(era) - 1) // 3] for k in range(4)]
