"""One way in: :func:`evaluate` runs the engine or the spec and returns :class:`Outcomes`.

``backend``:

* ``"engine"``: the vectorised engine (:mod:`hcsim.evaluation.engine`);
  :class:`~hcsim.evaluation.engine.EngineUnsupported` (an
  :class:`~hcsim.errors.InputError`) when it does not model the evaluation;
* ``"spec"``: the scalar spec, pair by pair (:mod:`hcsim.evaluation.spec`);
* ``"auto"`` (default): the engine when it models the evaluation, else the
  spec, with ``Outcomes.reason`` saying why (front ends print it).

Both give the same codes and service sets on every pair the engine models
(``tests/test_engine_differential.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hcsim.errors import InputError
from hcsim.evaluation import engine, measures, spec
from hcsim.evaluation.engine import EngineUnsupported
from hcsim.evaluation.outcomes import Outcomes
from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Vmm

#: Values of ``backend``.
CHOICES = ("auto", "engine", "spec")


def evaluate(history: History, strategy: Strategy, vmm: Vmm,
             configs: Sequence[Config | Setting] | None = None,
             backend: str = "auto", vcpus: int = 1, sets: bool = True) -> Outcomes:
    """Every (configuration, source, destination) of one strategy under one VMM.

    ``configs`` defaults to one configuration: the kernel's defaults.
    ``sets=False`` lets the engine leave the gained and lost sets out
    (the measures need only the codes).
    """
    if backend not in CHOICES:
        raise InputError(f"unknown backend {backend!r} (known: {', '.join(CHOICES)})")
    cfgs = tuple(configs) if configs else (frozenset(),)
    reason = ""
    if backend != "spec":
        try:
            return engine.evaluate(history, strategy, vmm, cfgs, sets=sets, vcpus=vcpus)
        except EngineUnsupported as exc:      # the engine checks before it computes
            reason = str(exc)
        if backend == "engine":
            raise EngineUnsupported(f"the engine cannot evaluate {strategy.spec} under "
                                    f"{vmm.name}: {reason}")
    return spec.evaluate(history, strategy, vmm, cfgs, vcpus, reason)


def tally(history: History, strategy: Strategy, vmm: Vmm,
          configs: Sequence[Config | Setting] | None = None, backend: str = "auto"
          ) -> tuple[np.ndarray, np.ndarray, Outcomes | None]:
    """Outcome counts ``[2, 6]`` and refused pairs by blame ``[2, 4]``
    (:func:`hcsim.evaluation.measures.counts`, :func:`~hcsim.evaluation.measures.blamed`),
    what :func:`hcsim.evaluation.measures.score_counts` needs.

    The engine counts them on epoch pairs without the ``[n, n]`` matrix
    (:func:`hcsim.evaluation.engine.tally`); where it does not model the
    evaluation (``auto``), the spec's outcomes are counted and returned
    too, so that the caller can say why (:func:`note`).
    """
    if backend not in CHOICES:
        raise InputError(f"unknown backend {backend!r} (known: {', '.join(CHOICES)})")
    if backend != "spec":
        try:
            return (*engine.tally(history, strategy, vmm, configs), None)
        except EngineUnsupported:   # "engine": evaluate raises it, saying which evaluation
            pass
    outcomes = evaluate(history, strategy, vmm, configs, backend, sets=False)
    return measures.counts(outcomes), measures.blamed(outcomes), outcomes


def tallies(history: History, strategies: Sequence[Strategy], vmms: Sequence[Vmm],
            configs: Sequence[Config | Setting] | None = None, backend: str = "auto"
            ) -> list[list[tuple[np.ndarray, np.ndarray, Outcomes | None]]]:
    """:func:`tally` of each of ``strategies`` under each of ``vmms`` (per
    strategy, per policy): the engine counts the evaluations it models
    together (:func:`hcsim.evaluation.engine.tallies`); each of the others
    as :func:`tally` does (the spec under ``auto``, an error under
    ``engine``)."""
    if backend not in CHOICES:
        raise InputError(f"unknown backend {backend!r} (known: {', '.join(CHOICES)})")
    got = (engine.tallies(history, strategies, vmms, configs) if backend != "spec"
           else [[None] * len(vmms) for _ in strategies])
    return [[(*one, None) if isinstance(one, tuple)
             else tally(history, strategy, vmm, configs, backend) for vmm, one in zip(vmms, row)]
            for strategy, row in zip(strategies, got)]


def note(outcomes: Outcomes) -> str:
    """One line saying the spec stood in for the engine, or ``""``."""
    if not outcomes.reason:
        return ""
    return (f"note: {outcomes.strategy.spec} under {outcomes.vmm.name}: evaluated by the "
            f"scalar spec, not the engine ({outcomes.reason})")
