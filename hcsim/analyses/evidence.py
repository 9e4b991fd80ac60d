"""Outcome shares and scorecards for the notebooks, computed with the engine.

The scorecard of ``hcsim compare`` pools every ordered release pair.  A
migration whose source predates ``registers_from`` is decided before any
encoding exists (the guest saw every supported service and no register says
otherwise), so the notebooks also report the **register era**: pairs whose
source *and* destination are at or after ``registers_from``, where the
encodings the thread argued about are the only thing that differs.

Every function here takes a history, a strategy spec and a VMM name, and
uses :func:`hcsim.evaluation.backends.evaluate` and the measures of
:mod:`hcsim.evaluation.measures`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.measures import (
    cost_at,
    counts,
    exhaustion,
    new_vm_pickup,
    pair_mask,
    shares,
    silent_loss,
)
from hcsim.evaluation.outcomes import CODES, DIRECTIONS
from hcsim.model.config import Config
from hcsim.model.history import History
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

__all__ = ["DIRECTIONS", "codes", "era_shares", "formatted", "pair_mask", "scorecard",
           "shares", "silent_loss"]


def codes(history: History, spec: str, vmm: str,
          configs: Sequence[Config] | None = None) -> np.ndarray:
    """Outcome codes ``[config, src, dst]`` (indices into :data:`OUTCOMES`)."""
    return evaluate(history, parse_strategy(spec), parse_vmm(vmm), configs).codes


def era_shares(history: History, spec: str, vmm: str, direction: str,
               configs: Sequence[Config] | None = None) -> dict[str, float]:
    """:func:`shares` of the register era (both ends >= ``registers_from``)."""
    return shares(codes(history, spec, vmm, configs), direction, history.registers_from)


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
    policy = parse_vmm(vmm)
    for spec in specs:
        strategy = parse_strategy(spec)
        outcomes = evaluate(history, strategy, policy, configs)
        fwd, bwd = shares(outcomes, "forward", start), shares(outcomes, "backward", start)
        every = counts(outcomes).sum(0)
        rows.append({
            "strategy": strategy.spec,
            "era fwd preserved": fwd["preserved"],
            "era bwd preserved": bwd["preserved"],
            "era bwd refused": bwd["refused"],
            "era silent loss": silent_loss(outcomes, start),
            "silent loss": silent_loss(outcomes),
            "unsupported": int(every[CODES["unsupported"]]) / (int(every.sum()) or 1),
            "bytes/vCPU": cost_at(history, strategy, policy,
                                  len(history.releases) - 1).bytes_per_vcpu,
            "pickup": new_vm_pickup(history, strategy),
            "new register at": exhaustion(history, strategy),
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
