"""Outcome shares and scorecards for the notebooks, computed with the engine.

The scorecard of ``hcsim compare`` pools every ordered release pair.  A
migration whose source predates ``registers_from`` is decided before any
encoding exists (the guest saw every supported service and no register says
otherwise), so the notebooks also report the **register era**: pairs whose
source *and* destination are at or after ``registers_from``, where the
encodings the thread argued about are the only thing that differs.

Every function here takes a history, a strategy spec and a VMM name, and
uses :func:`hcsim.evaluation.engine.evaluate` (checked against the scalar spec by the
differential tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hcsim.evaluation import engine
from hcsim.evaluation.measures import OUTCOMES
from hcsim.model.config import Config
from hcsim.model.history import History
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

#: Directions, as in :func:`hcsim.evaluation.measures.shares`.
DIRECTIONS = ("forward", "backward")


def codes(history: History, spec: str, vmm: str,
          configs: Sequence[Config] | None = None) -> np.ndarray:
    """Outcome codes ``[config, src, dst]`` (indices into :data:`OUTCOMES`)."""
    return engine.evaluate(history, parse_strategy(spec), parse_vmm(vmm), configs).outcome


def pair_mask(n: int, direction: str, start: int = 0) -> np.ndarray:
    """``[src, dst]`` booleans: pairs of ``direction`` with both ends >= ``start``."""
    s, d = np.indices((n, n))
    mask = d > s if direction == "forward" else d < s
    return mask & (s >= start) & (d >= start)


def shares(outcomes: np.ndarray, direction: str, start: int = 0) -> dict[str, float]:
    """Share of each outcome among ``direction`` pairs with both ends >= ``start``.

    ``outcomes`` is ``[src, dst]`` or ``[config, src, dst]`` (configurations
    pooled).  With no such pair every share is 0.
    """
    grid = outcomes if outcomes.ndim == 3 else outcomes[None]
    picked = grid[:, pair_mask(grid.shape[1], direction, start)].ravel()
    total = picked.size or 1
    counts = np.bincount(picked, minlength=len(OUTCOMES)) if picked.size else \
        np.zeros(len(OUTCOMES), int)
    return {o: int(counts[k]) / total for k, o in enumerate(OUTCOMES)}


def era_shares(history: History, spec: str, vmm: str, direction: str,
               configs: Sequence[Config] | None = None) -> dict[str, float]:
    """:func:`shares` of the register era (both ends >= ``registers_from``)."""
    return shares(codes(history, spec, vmm, configs), direction, history.registers_from)


def silent_loss(outcomes: np.ndarray, start: int = 0) -> float:
    """Share of ``lost`` or ``mixed`` among off-diagonal pairs with both ends >= start."""
    grid = outcomes if outcomes.ndim == 3 else outcomes[None]
    n = grid.shape[1]
    mask = pair_mask(n, "forward", start) | pair_mask(n, "backward", start)
    picked = grid[:, mask]
    if not picked.size:
        return 0.0
    return float(np.isin(picked, [OUTCOMES.index("lost"), OUTCOMES.index("mixed")]).mean())


def scorecard(history: History, vmm: str, specs: Sequence[str],
              configs: Sequence[Config] | None = None) -> pd.DataFrame:
    """One row per strategy: the register-era shares, silent loss, cost, pickup.

    Columns: ``strategy``; ``era fwd preserved``, ``era bwd preserved``,
    ``era bwd refused``, ``era silent loss`` (fractions, register era);
    ``silent loss`` (all pairs, as ``hcsim compare``); ``unsupported`` (all
    pairs); ``bytes/vCPU`` at the last release (None: unsupported);
    ``pickup`` (share of the last release's services a default new VM gets);
    ``new register at`` (first release after ``registers_from`` that lists a
    new feature register, or "").
    """
    rows = []
    start = history.registers_from
    for spec in specs:
        strategy = parse_strategy(spec)
        grid = codes(history, spec, vmm, configs)
        fwd, bwd = shares(grid, "forward", start), shares(grid, "backward", start)
        total = engine.summarize(history, strategy, parse_vmm(vmm), configs)
        every = grid[:, ~np.eye(grid.shape[1], dtype=bool)]
        rows.append({
            "strategy": strategy.spec,
            "era fwd preserved": fwd["preserved"],
            "era bwd preserved": bwd["preserved"],
            "era bwd refused": bwd["refused"],
            "era silent loss": silent_loss(grid, start),
            "silent loss": silent_loss(grid),
            "unsupported": float((every == OUTCOMES.index("unsupported")).mean())
            if every.size else 0.0,
            "bytes/vCPU": total["bytes_per_vcpu"],
            "pickup": total["pickup"],
            "new register at": total["exhaustion"],
        })
    return pd.DataFrame(rows)


#: Scorecard columns that hold fractions, shown as percentages by :func:`formatted`.
PERCENT_COLUMNS = ("era fwd preserved", "era bwd preserved", "era bwd refused",
                   "era silent loss", "silent loss", "unsupported", "pickup")


def formatted(card: pd.DataFrame) -> pd.DataFrame:
    """A scorecard with percentages and byte counts as fixed-format text.

    Fractions (:data:`PERCENT_COLUMNS`) become ``12.3%``; ``bytes/vCPU``
    becomes ``1,234`` (``-`` when unsupported); other columns are kept.
    """
    out = card.copy()
    for col in out.columns:
        if col == "bytes/vCPU":
            out[col] = [("-" if v is None or v != v else f"{int(v):,d}") for v in out[col]]
        elif col in PERCENT_COLUMNS:
            out[col] = [f"{100 * v:.1f}%" for v in out[col]]
    return out
