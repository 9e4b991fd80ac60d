"""Pair-by-pair dominance between strategies, and the safety/pickup frontier.

A strategy *dominates* another under a VMM on a set of histories when, on
every ordered release pair of every history, its outcome is never less safe
and on at least one pair it is safer.  Safety of one pair's outcome, from
safest (:data:`RANK`):

0. ``preserved``: the guest keeps exactly its services;
1. ``refused`` / ``unsupported``: the migration fails loudly; the guest
   keeps running where it was (costs availability, not correctness);
2. ``gained``: the guest silently gets services it did not boot with
   (harmless until it reboots and then depends on them);
3. ``lost`` / ``mixed``: the guest silently loses a service it may use.

A strategy a VMM cannot run at all (any ``unsupported`` pair: ``wide`` under
QEMU) is not deployable with that VMM and is left out of its comparison,
rather than ranked as "loud".

Pair safety alone rewards turning services off: a service that is off is
never lost.  The price is *pickup*, the share of a kernel's services a new
VM created by an unchanged VMM gets (:func:`hcsim.evaluation.measures.
new_vm_pickup`), so :func:`frontier` sets the two side by side.

Scopes: ``era`` counts only pairs whose source and destination both have
feature registers (``registers_from`` or later; the encodings differ only
there), ``all`` every ordered pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.measures import cost_at, new_vm_pickup
from hcsim.evaluation.outcomes import CODES, OUTCOMES
from hcsim.model.history import History
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

#: Safety rank of each outcome (lower is safer), indexed by outcome code.
RANK = np.array([{"preserved": 0, "refused": 1, "unsupported": 1, "gained": 2,
                  "lost": 3, "mixed": 3}[o] for o in OUTCOMES], np.int8)
SCOPES = ("era", "all")


def _mask(h: History, scope: str) -> np.ndarray:
    n = len(h.releases)
    m = ~np.eye(n, dtype=bool)
    if scope == "era":
        f = h.registers_from
        m[:f, :] = False
        m[:, :f] = False
    return m


class Grid:
    """Histories with their outcome codes per (strategy, VMM), computed once.

    ``outcomes(history, spec, vmm)`` evaluates one; default
    :func:`hcsim.evaluation.backends.evaluate` (pass a cached one, e.g.
    :meth:`hcsim.analyses.positions.Evidence.outcomes`, to share work).
    """

    def __init__(self, histories: Sequence[History], outcomes=None):
        self.histories = tuple(histories)
        self._outcomes = outcomes or (lambda h, spec, vmm: evaluate(
            h, parse_strategy(spec), parse_vmm(vmm)))
        self._codes: dict[tuple[str, str], list[np.ndarray]] = {}

    def codes(self, spec: str, vmm: str) -> list[np.ndarray]:
        """Default-configuration outcome codes ``[src, dst]`` of every history."""
        key = (spec, vmm)
        if key not in self._codes:
            self._codes[key] = [self._outcomes(h, spec, vmm).codes[0] for h in self.histories]
        return self._codes[key]

    def ranks(self, spec: str, vmm: str, scope: str = "era") -> tuple[np.ndarray, bool]:
        """Safety ranks of every counted pair of every history, concatenated;
        and whether the VMM can run the strategy (no ``unsupported`` pair)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        codes = self.codes(spec, vmm)
        runnable = not any((c == CODES["unsupported"]).any() for c in codes)
        return (np.concatenate([RANK[c][_mask(h, scope)]
                                for h, c in zip(self.histories, codes)]), runnable)


def _grid(histories: Grid | Sequence[History]) -> Grid:
    return histories if isinstance(histories, Grid) else Grid(histories)


def ranks(histories: Grid | Sequence[History], spec: str, vmm: str, scope: str = "era"
          ) -> tuple[np.ndarray, bool]:
    """:meth:`Grid.ranks` on ``histories``."""
    return _grid(histories).ranks(spec, vmm, scope)


def compare(histories: Grid | Sequence[History], specs: Sequence[str], vmms: Sequence[str],
            scope: str = "era") -> pd.DataFrame:
    """One row per (vmm, a, b), a != b, both runnable: pairs where ``a`` is
    ``worse`` / ``better`` than ``b``, and ``dominates`` (worse 0, better > 0)."""
    grid = _grid(histories)
    rows = []
    for vmm in vmms:
        got = {spec: grid.ranks(spec, vmm, scope) for spec in specs}
        ok = [spec for spec in specs if got[spec][1]]
        for a in ok:
            for b in ok:
                if a == b:
                    continue
                ra, rb = got[a][0], got[b][0]
                worse, better = int((ra > rb).sum()), int((ra < rb).sum())
                rows.append({"vmm": vmm, "a": a, "b": b, "pairs": len(ra), "worse": worse,
                             "better": better, "dominates": worse == 0 and better > 0})
    return pd.DataFrame(rows, columns=["vmm", "a", "b", "pairs", "worse", "better",
                                       "dominates"])


def dominated_by(table: pd.DataFrame, spec: str) -> pd.DataFrame:
    """Per VMM: the runnable strategies ``spec`` dominates, and those it does not
    (with the pairs where it is worse)."""
    rows = []
    for vmm, t in table[table.a == spec].groupby("vmm", sort=False):
        rows.append({"vmm": vmm, "dominated": int(t.dominates.sum()), "others": len(t),
                     "not dominated": ", ".join(
                         f"{b} ({w:,d} pairs worse)" for b, w in zip(t[~t.dominates].b,
                                                                     t[~t.dominates].worse))})
    return pd.DataFrame(rows, columns=["vmm", "dominated", "others", "not dominated"])


def frontier(histories: Grid | Sequence[History], specs: Sequence[str], vmm: str,
             scope: str = "era") -> pd.DataFrame:
    """Per runnable strategy: mean safety rank over the counted pairs, the shares
    of silent loss, silent gain and loud failure, and the mean pickup over the
    histories' last releases; ``on_frontier`` marks strategies no other beats
    on both mean rank (lower) and pickup (higher)."""
    grid = _grid(histories)
    rows = []
    for spec in specs:
        r, runnable = grid.ranks(spec, vmm, scope)
        if not runnable:
            continue
        s = parse_strategy(spec)
        pick = float(np.mean([new_vm_pickup(h, s) for h in grid.histories]))
        rows.append({"strategy": spec, "mean rank": float(r.mean()),
                     "silent loss": float((r == 3).mean()), "silent gain": float((r == 2).mean()),
                     "loud": float((r == 1).mean()), "pickup": pick})
    df = pd.DataFrame(rows)
    df["on_frontier"] = [
        not any((o["mean rank"] <= x["mean rank"] and o["pickup"] >= x["pickup"]
                 and (o["mean rank"] < x["mean rank"] or o["pickup"] > x["pickup"]))
                for _, o in df.iterrows())
        for _, x in df.iterrows()]
    return df


def cost_excess(histories: Sequence[History], a: str, b: str, vmm: str = "qemu"
                ) -> tuple[int, int, int]:
    """Register-era releases where ``a`` moves more hypercall feature-register
    bytes per vCPU than ``b`` under ``vmm``: (releases, of how many, most extra bytes)."""
    more = total = worst = 0
    sa, sb, v = parse_strategy(a), parse_strategy(b), parse_vmm(vmm)
    for h in histories:
        for r in range(h.registers_from, len(h.releases)):
            x = cost_at(h, sa, v, r, feature_only=True)
            y = cost_at(h, sb, v, r, feature_only=True)
            total += 1
            extra = (x.bytes_per_vcpu or 0) - (y.bytes_per_vcpu or 0)
            more += extra > 0
            worst = max(worst, extra)
    return more, total, worst


def where_worse(grid: Grid, a: str, others: Sequence[str], vmm: str, scope: str = "all"
                ) -> pd.DataFrame:
    """The pairs where ``a`` is less safe than each runnable one of ``others``, grouped by the
    other strategy, direction, whether the source and the destination predate
    ``registers_from`` (have no feature register) and the two outcomes."""
    rows: dict[tuple, int] = {}
    for b in others:
        if b == a or not grid.ranks(b, vmm, scope)[1]:
            continue                    # the VMM cannot run b: not compared (module doc)
        for h, ca, cb in zip(grid.histories, grid.codes(a, vmm), grid.codes(b, vmm)):
            worse = (RANK[ca] > RANK[cb]) & _mask(h, scope)
            for s, d in zip(*np.nonzero(worse)):
                key = (b, "forward" if d > s else "backward", bool(s < h.registers_from),
                       bool(d < h.registers_from),
                       OUTCOMES[ca[s, d]], OUTCOMES[cb[s, d]])
                rows[key] = rows.get(key, 0) + 1
    return pd.DataFrame([(*k, n) for k, n in sorted(rows.items())],
                        columns=["other", "direction", "from a kernel without feature registers",
                                 "into a kernel without feature registers",
                                 "ours", "theirs", "pairs"])
