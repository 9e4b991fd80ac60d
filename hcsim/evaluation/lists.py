"""Whole-list restore rules over every pair of saved lists (DESIGN.md section 9).

With other registers in the model (:mod:`hcsim.model.other`) the registers a
VMM saves no longer only grow with the release: system registers come and
go.  The engine (:mod:`hcsim.evaluation.engine`) then decides the *list*
part of a restore from the tables built here, and the value part (firmware
values, unknown bits) as before.

A *list epoch* is a run of releases whose saved list (the hypercall
registers the VMM saves, plus the other registers, minus the VMM's hidden
ids) is the same.  For every pair of list epochs (source, destination):

* ``qemu``: QEMU's checks (:class:`hcsim.model.vmm.Qemu`): the count check
  (``cpreg_vmstate_array_len``: more incoming ids than the destination
  lists, incoming ids in ``safe`` that the destination lacks not counted)
  and the sorted walk (an incoming id the destination lacks that sorts
  before the destination's last id; ``safe`` ones ignored).  Code 0 when
  both pass, else the blame of the offending ids: the ids the destination
  lacks for the count check, the early ones for the walk.
* ``missing``: the blame of every incoming id the destination lacks (a
  snapshot writer's ``-ENOENT``), 0 if none.

Blame codes: :data:`NONE` 0, :data:`HYPERCALL` 1 (firmware or feature
registers), :data:`OTHER` 2, :data:`BOTH` 3 (a bit set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NONE, HYPERCALL, OTHER, BOTH = 0, 1, 2, 3
#: Blame names by code, as the ``matrix`` csv spells them.
BLAMES = ("", "hypercall", "other", "both")

#: Words per block of epoch pairs (bounds each temporary to 16 MiB).
_BLOCK_WORDS = 1 << 21


@dataclass(frozen=True)
class ListTables:
    """List epochs of the releases and the rule tables over epoch pairs.

    Also the packed lists themselves (``members``: bit ``k`` of epoch ``e``
    is ``universe[k]``) and the masks :func:`qemu_codes` needs, so that a
    source whose own drops differ (``qemu-tolerant``: zero-valued feature
    registers) can be evaluated against every destination epoch.
    """

    epoch: np.ndarray      # [n] list epoch of each release
    qemu: np.ndarray       # [E, E] int8 blame code of QEMU's count check and walk
    missing: np.ndarray    # [E, E] int8 blame code of the ids the destination lacks
    counts: np.ndarray     # [E] saved registers (the whole list)
    universe: tuple[int, ...] = ()
    members: np.ndarray | None = None   # [E, nw] packed lists
    hyp: np.ndarray | None = None       # [nw] hypercall ids
    oth: np.ndarray | None = None       # [nw] other ids
    below: np.ndarray | None = None     # [E, nw] ids below each epoch's last id
    safe: np.ndarray | None = None      # [nw] ids dropped when the destination lacks them


def qemu_codes(tab: ListTables, src: np.ndarray, drops: np.ndarray) -> np.ndarray:
    """``[S, E]`` QEMU blame codes of sources ``src`` (packed ``[S, nw]`` lists)
    that also drop the ids ``drops`` (packed ``[S, nw]``) the destination lacks,
    against every destination epoch."""
    M, counts, HYP, OTH = tab.members, tab.counts, tab.hyp, tab.oth
    out = np.zeros((len(src), len(M)), np.int8)
    rows = max(1, _BLOCK_WORDS // max(1, len(M) * M.shape[1]))
    for a in range(0, len(src), rows):
        s = src[a:a + rows, None, :]
        safe = (drops[a:a + rows] | tab.safe)[:, None, :]
        lack = s & ~M[None]
        lack_safe = lack & safe
        lack_ns = lack & ~safe
        n_in = _popcount(s) - _popcount(lack_safe)
        count_fail = n_in > counts[None, :]
        early = lack_ns & tab.below[None]
        out[a:a + rows] = np.where(
            count_fail,
            (lack_ns & HYP).any(-1) * HYPERCALL + (lack_ns & OTH).any(-1) * OTHER,
            (early & HYP).any(-1) * HYPERCALL + (early & OTH).any(-1) * OTHER)
    return out


def _pack(rows: np.ndarray) -> np.ndarray:
    nw = max(1, -(-rows.shape[1] // 64))
    pad = nw * 64 - rows.shape[1]
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), bool)], axis=1)
    return np.ascontiguousarray(np.packbits(rows, axis=1, bitorder="little")).view(np.uint64)


def _popcount(words: np.ndarray) -> np.ndarray:
    return np.bitwise_count(words).sum(-1, dtype=np.int64)


def tables(hyp: Sequence[Sequence[int]], other: Sequence[Sequence[int]],
           safe: frozenset[int] = frozenset()) -> ListTables:
    """The tables for saved lists ``hyp[r]`` (hypercall ids) and ``other[r]``."""
    n = len(hyp)
    keys: dict[tuple, int] = {}
    epoch = np.empty(n, np.int64)
    norm: dict[int, tuple] = {}     # each list object sorted once (rows repeat objects)

    def sort(ids) -> tuple:
        hit = norm.get(id(ids))
        if hit is None:
            hit = norm[id(ids)] = tuple(sorted(ids))
        return hit

    for r in range(n):
        if r and hyp[r] is hyp[r - 1] and other[r] is other[r - 1]:
            epoch[r] = epoch[r - 1]
            continue
        epoch[r] = keys.setdefault((sort(hyp[r]), sort(other[r])), len(keys))
    lists = list(keys)
    E = len(lists)
    hyp_ids = [np.array(h, dtype=np.uint64) for h, _ in lists]
    all_ids = [np.concatenate([h, np.array(o, dtype=np.uint64)])
               for h, (_, o) in zip(hyp_ids, lists)]
    uni = np.unique(np.concatenate(all_ids)) if E else np.zeros(0, np.uint64)
    universe = uni.tolist()
    U = len(universe)
    member = np.zeros((E, max(U, 1)), bool)
    is_hyp = np.zeros(max(U, 1), bool)
    for e, ids in enumerate(all_ids):
        member[e, np.searchsorted(uni, ids)] = True
    for h in hyp_ids:
        is_hyp[np.searchsorted(uni, h)] = True
    is_safe = np.zeros(max(U, 1), bool)
    if U and safe:
        safe_ids = np.array(sorted(safe), dtype=np.uint64)
        at = np.minimum(np.searchsorted(uni, safe_ids), U - 1)
        is_safe[at[uni[at] == safe_ids]] = True
    M = _pack(member)                                   # [E, nw]
    HYP = _pack(is_hyp[None])[0]
    OTH = _pack(~is_hyp[None] & (np.arange(max(U, 1)) < U)[None])[0]
    SAFE = _pack(is_safe[None])[0]
    counts = _popcount(M)
    # every index below the destination's last (highest) listed id
    last = np.array([np.flatnonzero(row).max() if row.any() else -1 for row in member])
    below = _pack(np.arange(max(U, 1))[None, :] < last[:, None])   # [E, nw]
    qemu = np.zeros((E, E), np.int8)
    missing = np.zeros((E, E), np.int8)
    rows = max(1, _BLOCK_WORDS // max(1, E * M.shape[1]))
    for a in range(0, E, rows):
        src = M[a:a + rows, None, :]                    # [b, 1, nw]
        lack = src & ~M[None]                           # [b, E, nw]
        lack_safe = lack & SAFE
        lack_ns = lack & ~SAFE
        n_in = counts[a:a + rows, None] - _popcount(lack_safe)
        count_fail = n_in > counts[None, :]
        lack_h = (lack_ns & HYP).any(-1)
        lack_o = (lack_ns & OTH).any(-1)
        early = lack_ns & below[None]
        walk_h = (early & HYP).any(-1)
        walk_o = (early & OTH).any(-1)
        code = np.where(count_fail, lack_h * HYPERCALL + lack_o * OTHER,
                        walk_h * HYPERCALL + walk_o * OTHER)
        qemu[a:a + rows] = code
        missing[a:a + rows] = ((lack & HYP).any(-1) * HYPERCALL
                               + (lack & OTH).any(-1) * OTHER)
    return ListTables(epoch, qemu, missing, counts, tuple(universe), M, HYP, OTH, below, SAFE)


def blame_of(ids: Sequence[int], is_hypercall) -> int:
    """Blame code of offending ids (``is_hypercall(id)`` says which kind)."""
    kinds = {HYPERCALL if is_hypercall(r) else OTHER for r in ids}
    return sum(kinds)


def saved_lists(history, layout, saves, hidden: frozenset[int] = frozenset(),
                key=None) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Per release, the hypercall ids and the other ids a VMM saves.

    ``saves(id)`` is the VMM's choice (asked once per distinct id); ``hidden``
    ids are left out (QEMU's ``x-mig-hidden-regs``).  Firmware registers are
    listed from their introduction, feature registers from ``listed_from``,
    other registers as :meth:`hcsim.model.history.History.other_table` says
    (the history's host and vCPU features).  With ``key`` (what identifies
    ``saves``, e.g. :attr:`hcsim.model.vmm.Vmm.key`) the other lists are
    computed once per history and key (:func:`saved_other`).
    """
    return (saved_hyp(history, layout, saves, hidden),
            list(saved_other(history, saves, hidden, key).lists))


def saved_hyp(history, layout, saves, hidden: frozenset[int] = frozenset(),
              reg_saves: Sequence[bool] | None = None) -> list[tuple[int, ...]]:
    """Per release, the hypercall ids a VMM saves (see :func:`saved_lists`).

    ``reg_saves``: ``saves`` of every register of ``layout``, if known."""
    fw = [(f.introduced, f.id) for f in history.firmware if saves(f.id) and f.id not in hidden]
    if reg_saves is None:
        reg_saves = [saves(r.id) for r in layout.regs]
    feats = [(r.listed_from, r.id) for r, kept in zip(layout.regs, reg_saves)
             if kept and r.id not in hidden]
    return listed_by_release(len(history.releases), *zip(*(fw + feats)) if fw or feats
                             else ((), ()))


def listed_by_release(n: int, listed_from: Sequence[int], ids: Sequence[int]
                      ) -> list[tuple[int, ...]]:
    """Per release ``r < n``, the sorted ``ids`` with ``listed_from <= r``;
    releases listing the same ids share one tuple."""
    lf = np.asarray(listed_from, dtype=np.int64).reshape(-1)
    order = np.argsort(lf, kind="stable")
    ids = [ids[k] for k in order.tolist()]
    upto = np.searchsorted(lf[order], np.arange(n), side="right")
    lists: dict[int, tuple[int, ...]] = {}
    return [lists.get(k) or lists.setdefault(k, tuple(sorted(ids[:k])))
            for k in upto.tolist()]


@dataclass(frozen=True)
class SavedOther:
    """The other registers a VMM saves, per release (:func:`saved_other`)."""

    lists: tuple[tuple[int, ...], ...]   # per release, sorted
    ids: tuple[int, ...]                 # every id of some list, sorted
    token: object                        # hashable; the same lists give the same token


def saved_other(history, saves, hidden: frozenset[int] = frozenset(), key=None) -> SavedOther:
    """Per release, the other ids a VMM saves (``saves``, minus ``hidden``).

    With ``key`` (what identifies ``saves``) the answer is kept with the
    history's other-register data, so the strategies and VMMs of one
    history ask ``saves`` of each id once.
    """
    table = history.other_table()
    cache = history.other._tables if table is not None and key is not None else None
    ck = ("saved", history.host, history.features, key, hidden)
    if cache is not None and ck in cache:
        return cache[ck]
    if table is None:
        table = ((),) * len(history.releases)
    universe = {i for ids in set(table) for i in ids}
    keep = {i for i in universe if saves(i) and i not in hidden}
    memo: dict = {}         # equal lists become one object (tables() relies on it for speed)
    if len(keep) == len(universe):
        other = tuple(memo.setdefault(ids, ids) for ids in table)
    else:
        other = tuple(memo.setdefault(ids, tuple(i for i in ids if i in keep)) for ids in table)
    if cache is None:
        return SavedOther(other, tuple(sorted(keep)), other)
    tokens = cache.setdefault(("tokens", history.host, history.features), {})
    token = (history.host, history.features, tokens.setdefault(other, len(tokens)))
    out = cache[ck] = SavedOther(other, tuple(sorted(keep)), token)
    return out
