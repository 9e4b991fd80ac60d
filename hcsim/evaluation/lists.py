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
from itertools import chain

import numpy as np

from hcsim.model.vmm import facts

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
    # every (epoch, id) of the lists, hypercall ids marked: one unique, one scatter
    hlen = np.array([len(h) for h, _ in lists], np.int64)
    sizes = hlen + np.array([len(o) for _, o in lists], np.int64)
    flat = np.fromiter(chain.from_iterable(part for pair in lists for part in pair),
                       np.uint64, int(sizes.sum()))
    # the k-th id of an epoch's list is a hypercall id when k < that epoch's hlen
    k = np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    hyp_mask = k < np.repeat(hlen, sizes)
    uni, where = np.unique(flat, return_inverse=True)
    universe = uni.tolist()
    U = len(universe)
    member = np.zeros((E, max(U, 1)), bool)
    member[np.repeat(np.arange(E), sizes), where] = True
    is_hyp = np.zeros(max(U, 1), bool)
    is_hyp[where[hyp_mask]] = True
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
    # every index below the destination's last (highest) listed id (-1: lists nothing)
    last = np.where(member.any(1), member.shape[1] - 1 - member[:, ::-1].argmax(1), -1)
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
    token: object                        # hashable; the same list objects give the same token


def saved_other(history, vmm) -> SavedOther:
    """Per release, the other ids ``vmm`` saves (its ``saves``: hidden ids left out).

    Kept with the history's other-register data, so the strategies of one
    history share it, and asked of :func:`hcsim.model.vmm.facts` (one sorted
    lookup of every id the history lists).
    """
    table = history.other_table()
    key = vmm.key
    cache = history.other._tables if table is not None else None
    ck = ("saved", history.host, history.features, key)
    if cache is not None and ck in cache:
        return cache[ck]
    if table is None:
        table = ((),) * len(history.releases)
    base = cache.get(("lists", history.host, history.features)) if cache is not None else None
    if base is None:
        # Per history, whatever the VMM: each distinct list once (releases repeat
        # list objects; equal lists become one object, which tables() relies on
        # for speed), and every id any release lists.
        memo: dict = {}
        canonical = {id(ids): memo.setdefault(ids, ids) for ids in table}
        universe = np.unique(np.concatenate([np.zeros(0, np.uint64)] + [
            np.array(ids, np.uint64) for ids in memo]))
        base = (canonical, universe)
        if cache is not None:
            cache[("lists", history.host, history.features)] = base
    canonical, universe = base
    kept = universe[facts(vmm, universe).saves].tolist()
    if len(kept) < len(universe):
        keep, memo = set(kept), {}
        canonical = {k: memo.setdefault(ids, tuple(i for i in ids if i in keep))
                     for k, ids in canonical.items()}
    other = tuple(canonical[id(ids)] for ids in table)
    if cache is None:
        return SavedOther(other, tuple(kept), other)
    # The same list objects give the same token (objects the cache keeps alive).
    tokens = cache.setdefault(("tokens", history.host, history.features), {})
    token = (history.host, history.features,
             tokens.setdefault(tuple(map(id, other)), len(tokens)))
    out = cache[ck] = SavedOther(other, tuple(kept), token)
    return out
