"""Outcome grids by name, and their register-era shares, for the report analyses.

The scorecard of ``hcsim compare`` pools every ordered release pair.  A
migration whose source predates ``registers_from`` is decided before any
encoding exists (the guest saw every supported service and no register says
otherwise), so the reports also look at the **register era**: pairs whose
source *and* destination are at or after ``registers_from``, where the
encodings the thread argued about are the only thing that differs
(:func:`hcsim.evaluation.measures.shares` with ``since``, or
``hcsim.scorecard(..., since=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.measures import shares
from hcsim.model.config import Config
from hcsim.model.history import History
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm


def codes(history: History, spec: str, vmm: str,
          configs: Sequence[Config] | None = None) -> np.ndarray:
    """Outcome codes ``[config, src, dst]`` (indices into :data:`OUTCOMES`)."""
    return evaluate(history, parse_strategy(spec), parse_vmm(vmm), configs).codes


def era_shares(history: History, spec: str, vmm: str, direction: str,
               configs: Sequence[Config] | None = None) -> dict[str, float]:
    """:func:`shares` of the register era (both ends >= ``registers_from``)."""
    return shares(codes(history, spec, vmm, configs), direction, history.registers_from)
