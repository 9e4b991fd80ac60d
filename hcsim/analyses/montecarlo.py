"""Monte Carlo helpers for notebook 5: intervals, register-era rates, VMM lag.

:func:`hcsim.analyses.sweep.run` scores many synthetic futures over all release pairs;
this module adds what the notebook needs on top:

* :func:`mean_interval` / :func:`percentile_interval`: the uncertainty of a
  mean over futures (normal approximation, no resampling, so no extra
  randomness) and the spread of the futures themselves;
* :func:`era_rates`: outcome rates of the register era (both ends at or after
  ``registers_from``, :mod:`hcsim.analyses.evidence`), where the encodings differ;
* :func:`lagged_codes`: the outcome matrix under a QEMU that lags the kernel
  by ``lag`` releases;
* :func:`exhaustion_after`: releases from ``registers_from`` until a
  reservation first needs a new register;
* :func:`grid` and :func:`estimates`: sweeps along one generator parameter
  and the t intervals of their means.

VMM lag, the model (where the task was silent): a migration between releases
``lo < hi`` is handled by the QEMU released with kernel ``hi - lag``.  That
QEMU *knows* every feature register listed at or before ``hi - lag``.  If it
knows every feature register that is new between ``lo`` and ``hi`` it acts
as an up-to-date VMM: going forward from a source that had feature registers
it zeroes the registers missing from the stream (``zero-unknown``; a source
from before ``registers_from`` sent none and the guest saw everything, so it
keeps the reset values, as ``qemu``); going backward it drops an unknown
feature register whose value is 0 (``qemu-tolerant``).  Otherwise it acts as
the unchanged ``qemu``.  ``lag=None`` is a VMM that never changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hcsim.analyses.evidence import codes
from hcsim.evaluation.measures import counts
from hcsim.evaluation.outcomes import CODES, SILENT
from hcsim.model.history import History
from hcsim.model.strategies import parse as parse_strategy

if TYPE_CHECKING:
    import pandas as pd

#: z of a two-sided 95% normal interval.
Z95 = 1.959963984540054


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its normal-approximation interval.

    Values outside [0, 1] are allowed; the interval is not clipped.  With
    fewer than two values the interval is the mean itself.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean, mean
    half = z * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def percentile_interval(values: Sequence[float], level: float = 0.9
                        ) -> tuple[float, float, float]:
    """(median, low, high) of the central ``level`` of the finite values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    tail = (1 - level) / 2
    lo, mid, hi = np.quantile(x, [tail, 0.5, 1 - tail])
    return float(mid), float(lo), float(hi)


def era_rates(grid: np.ndarray, history: History) -> dict[str, float]:
    """Register-era rates of one ``[src, dst]`` outcome matrix.

    ``fwd_changed``: forward pairs whose guest view changed (gained, lost or
    mixed); ``bwd_refused``: backward pairs refused; ``silent_loss``: lost or
    mixed among all off-diagonal pairs; each NaN when the era has no pair.
    """
    fwd, bwd = counts(grid, history.registers_from)

    def share(names, row):
        total = int(row.sum())
        return sum(int(row[CODES[o]]) for o in names) / total if total else math.nan

    return {"fwd_changed": share(("gained", "lost", "mixed"), fwd),
            "bwd_refused": share(("refused",), bwd),
            "silent_loss": share(SILENT, fwd + bwd)}


def lagged_codes(history: History, spec: str, lags: Sequence[int | None]
                 ) -> dict[int | None, np.ndarray]:
    """Outcome codes ``[src, dst]`` under a QEMU ``lag`` releases behind, per lag."""
    unchanged = codes(history, spec, "qemu")[0]
    if any(lag is not None and lag < 0 for lag in lags):
        raise ValueError(f"lags must be >= 0 or None, got {list(lags)}")
    if all(lag is None for lag in lags):
        return {lag: unchanged for lag in lags}
    zeroing = codes(history, spec, "zero-unknown")[0]
    tolerant = codes(history, spec, "qemu-tolerant")[0]
    n, start = len(history.releases), history.registers_from
    listed = np.sort([r.listed_from for r in parse_strategy(spec).layout(history).regs])
    s, d = np.indices((n, n))
    lo, hi = np.minimum(s, d), np.maximum(s, d)
    if listed.size:
        k = np.searchsorted(listed, hi, side="right") - 1
        newest = np.where(k >= 0, listed[np.maximum(k, 0)], -1)
        newest = np.where(newest > lo, newest, -1)     # only registers new in (lo, hi]
    else:
        newest = np.full((n, n), -1)
    updated = np.where(d > s, np.where(s >= start, zeroing, unchanged), tolerant)
    return {lag: unchanged if lag is None else np.where(newest <= hi - lag, updated, unchanged)
            for lag in lags}


def exhaustion_after(history: History, spec: str) -> float:
    """Releases from ``registers_from`` to the first new register (inf: never)."""
    ex = parse_strategy(spec).layout(history).exhaustion()
    return math.inf if ex is None else float(ex - history.registers_from)


def grid(param: str, values: Sequence[float], futures: int, seed: int = 0,
         strategies: Sequence[str] = ("upstream", "raz-wi", "raz-einval"),
         vmms: Sequence[str] = ("qemu",), **generator) -> pd.DataFrame:
    """A sweep (:func:`hcsim.analyses.sweep.run`, in this process) per value of one
    generator parameter, the others as ``generator``; one frame, ``param`` a column."""
    import pandas as pd

    from hcsim.analyses.sweep import run

    out = []
    for v in values:
        g = run(futures, seed, list(strategies), list(vmms), jobs=1, progress=False,
                **(generator | {param: v}))
        g[param] = v
        out.append(g)
    return pd.concat(out, ignore_index=True)


def estimates(frame: pd.DataFrame, param: str, column: str,
              strategies: Sequence[str] | None = None, level: float = 0.95
              ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per strategy, (means, lows, highs) of ``column`` at each sorted value of
    ``param``: the Student's t interval of the mean over futures
    (:func:`hcsim.analyses.sensitivity.t_interval`)."""
    from hcsim.analyses.sensitivity import t_interval

    names = strategies if strategies is not None else list(dict.fromkeys(frame["strategy"]))
    xs = sorted(frame[param].unique())
    return {s: tuple(np.array([t_interval(frame[(frame["strategy"] == s) &
                                                (frame[param] == v)][column], level)
                               for v in xs]).T)
            for s in names}


def with_layout(histories: Sequence[History], space_registers: str, bits: str
                ) -> list[History]:
    """The same histories under other layout assumptions (:mod:`hcsim.model.history`):
    the same services, releases and draws; only where bits go changes."""
    from dataclasses import replace

    from hcsim.errors import InputError
    from hcsim.model.history import BITS, SPACE_REGISTERS

    if space_registers not in SPACE_REGISTERS or bits not in BITS:
        raise InputError(f"unknown layout {space_registers!r}, {bits!r} (space_registers: "
                         f"{', '.join(SPACE_REGISTERS)}; bits: {', '.join(BITS)})")
    return [replace(h, space_registers=space_registers, bits=bits) for h in histories]


def fwd_changed(histories: Sequence[History], spec: str, lag: int | None = None) -> list[float]:
    """Per history, the register-era share of forward pairs whose guest changed
    under a QEMU ``lag`` releases behind (None: never updated), :func:`era_rates`."""
    return [era_rates(lagged_codes(h, spec, [lag])[lag], h)["fwd_changed"] for h in histories]
