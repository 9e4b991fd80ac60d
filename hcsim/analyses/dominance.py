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
from hcsim.evaluation.measures import new_vm_pickup
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


def ranks(histories: Sequence[History], spec: str, vmm: str, scope: str = "era"
          ) -> tuple[np.ndarray, bool]:
    """Safety ranks of every counted pair of every history (default
    configuration), concatenated; and whether the VMM can run the strategy."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    parts, runnable = [], True
    s, v = parse_strategy(spec), parse_vmm(vmm)
    for h in histories:
        c = evaluate(h, s, v).codes[0]
        runnable &= not (c == CODES["unsupported"]).any()
        parts.append(RANK[c][_mask(h, scope)])
    return np.concatenate(parts), runnable


def compare(histories: Sequence[History], specs: Sequence[str], vmms: Sequence[str],
            scope: str = "era") -> pd.DataFrame:
    """One row per (vmm, a, b), a != b, both runnable: pairs where ``a`` is
    ``worse`` / ``better`` than ``b``, and ``dominates`` (worse 0, better > 0)."""
    rows = []
    for vmm in vmms:
        got = {spec: ranks(histories, spec, vmm, scope) for spec in specs}
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
        rows.append({"vmm": vmm, "dominates": ", ".join(t[t.dominates].b),
                     "does not dominate": ", ".join(
                         f"{b} ({w} worse)" for b, w in zip(t[~t.dominates].b,
                                                           t[~t.dominates].worse)),
                     "others": len(t), "dominated": int(t.dominates.sum())})
    return pd.DataFrame(rows)


def frontier(histories: Sequence[History], specs: Sequence[str], vmm: str,
             scope: str = "era") -> pd.DataFrame:
    """Per strategy: mean safety rank over the counted pairs, its shares of
    silent loss and silent gain, and the mean pickup over the histories'
    last releases; ``on_frontier`` marks strategies no other beats on both
    mean rank and pickup."""
    rows = []
    for spec in specs:
        r, runnable = ranks(histories, spec, vmm, scope)
        if not runnable:
            continue
        s = parse_strategy(spec)
        pick = float(np.mean([new_vm_pickup(h, s) for h in histories]))
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
