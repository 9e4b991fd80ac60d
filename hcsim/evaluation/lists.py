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
from dataclasses import dataclass, replace
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
    universe: np.ndarray | None = None  # [U] uint64 sorted ids of bits 0..U-1
    members: np.ndarray | None = None   # [E, nw] packed lists
    hyp: np.ndarray | None = None       # [nw] hypercall ids
    oth: np.ndarray | None = None       # [nw] other ids
    below: np.ndarray | None = None     # [E, nw] ids below each epoch's last id
    safe: np.ndarray | None = None      # [nw] ids dropped when the destination lacks them


def qemu_codes(tab: ListTables, src: np.ndarray, drops: np.ndarray | None = None
               ) -> np.ndarray:
    """``[S, E]`` QEMU blame codes of sources ``src`` (packed ``[S, nw]`` lists)
    that also drop the ids ``drops`` (packed ``[S, nw]``; default none) the
    destination lacks, against every destination epoch."""
    M, counts, HYP, OTH = tab.members, tab.counts, tab.hyp, tab.oth
    out = np.zeros((len(src), len(M)), np.int8)
    rows = max(1, _BLOCK_WORDS // max(1, len(M) * M.shape[1]))
    absent = ~M[None]
    for a in range(0, len(src), rows):
        s = src[a:a + rows, None, :]
        safe = tab.safe[None, None] if drops is None else (drops[a:a + rows] | tab.safe)[:, None, :]
        lack = s & absent
        lack_safe = lack & safe
        lack ^= lack_safe                   # the missing ids that are not dropped
        count_fail = _popcount(s) - _popcount(lack_safe) > counts[None, :]
        # blamed: every such id if the count check fails, else the early ones
        blamed = np.where(count_fail[..., None], lack, lack & tab.below[None])
        out[a:a + rows] = ((blamed & HYP).any(-1) * np.int8(HYPERCALL)
                           + (blamed & OTH).any(-1) * np.int8(OTHER))
    return out


def _missing(M: np.ndarray, HYP: np.ndarray, OTH: np.ndarray) -> np.ndarray:
    """``[E, E]`` blame codes of the ids each source epoch lists and each
    destination epoch lacks."""
    E = len(M)
    out = np.zeros((E, E), np.int8)
    rows = max(1, _BLOCK_WORDS // max(1, E * M.shape[1]))
    for a in range(0, E, rows):
        lack = M[a:a + rows, None, :] & ~M[None]        # [b, E, nw]
        out[a:a + rows] = (lack & HYP).any(-1) * HYPERCALL + (lack & OTH).any(-1) * OTHER
    return out


def _pack(rows: np.ndarray) -> np.ndarray:
    nw = max(1, -(-rows.shape[1] // 64))
    pad = nw * 64 - rows.shape[1]
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), bool)], axis=1)
    return np.ascontiguousarray(np.packbits(rows, axis=1, bitorder="little")).view(np.uint64)


def _popcount(words: np.ndarray) -> np.ndarray:
    return np.bitwise_count(words).sum(-1, dtype=np.int64)


@dataclass(frozen=True)
class Lists:
    """Lists of ids per release as a membership table: release ``r`` lists
    ``ids[member[epoch[r]]]`` (``ids`` sorted, ``member`` ``[L, len(ids)]``
    bool, one row per distinct list)."""

    epoch: np.ndarray       # [n] row of member per release
    member: np.ndarray      # [L, U] bool
    ids: np.ndarray         # [U] uint64, sorted


def _distinct(epoch: np.ndarray, member: np.ndarray, ids: np.ndarray) -> Lists:
    """The same lists with equal rows of ``member`` merged."""
    if len(member) > 1:
        packed = _pack(member)
        rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1] * 8))).ravel()
        _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        if len(first) < len(member):
            # renumber by first appearance, so the rows keep their order
            order = np.argsort(first, kind="stable")
            rank = np.empty(len(order), np.int64)
            rank[order] = np.arange(len(order))
            epoch = rank[inverse.reshape(-1)][epoch]
            member = member[first[order]]
    return Lists(epoch, member, ids)


def of_table(table: Sequence[Sequence[int]]) -> Lists:
    """:class:`Lists` of sorted id tuples per release (rows that repeat a
    tuple object, as :meth:`hcsim.model.other.OtherRegisters.table`'s do,
    are read once)."""
    n = len(table)
    epoch = np.empty(n, np.int64)
    seen: dict[int, int] = {}
    distinct: list[Sequence[int]] = []
    for r, ids in enumerate(table):
        k = seen.get(id(ids))
        if k is None:
            k = seen[id(ids)] = len(distinct)
            distinct.append(ids)
        epoch[r] = k
    sizes = np.array([len(ids) for ids in distinct], np.int64)
    flat = np.fromiter(chain.from_iterable(distinct), np.uint64, int(sizes.sum()))
    uni, where = np.unique(flat, return_inverse=True)
    member = np.zeros((len(distinct), len(uni)), bool)
    member[np.repeat(np.arange(len(distinct)), sizes), where.reshape(-1)] = True
    return _distinct(epoch, member, uni)


def listed_by_release(n: int, listed_from: Sequence[int], ids: Sequence[int]) -> Lists:
    """Per release ``r < n``, the ``ids`` with ``listed_from <= r``: one row
    per number of ids listed so far (each a distinct list)."""
    lf = np.asarray(listed_from, dtype=np.int64).reshape(-1)
    arr = np.asarray(ids, dtype=np.uint64).reshape(-1)
    by_id = np.argsort(arr, kind="stable")
    arr, lf = arr[by_id], lf[by_id]
    order = np.argsort(lf, kind="stable")
    rank = np.empty(len(lf), np.int64)
    rank[order] = np.arange(len(lf))
    upto = np.searchsorted(lf[order], np.arange(n), side="right")
    states, epoch = np.unique(upto, return_inverse=True)
    return Lists(epoch.reshape(-1), rank[None, :] < states[:, None], arr)


def tables(hyp: Lists, other: Lists, safe: frozenset[int] = frozenset()) -> ListTables:
    """The tables for saved lists: per release, the hypercall ids ``hyp`` lists
    and the other ids ``other`` lists."""
    # a list epoch is a (hypercall row, other row) pair; the rows are distinct
    # lists and the two id sets disjoint, so equal pairs are equal lists
    H = len(hyp.member)
    key = other.epoch * H + hyp.epoch
    pairs, epoch = np.unique(key, return_inverse=True)
    epoch = epoch.reshape(-1)
    uni = np.concatenate([other.ids, hyp.ids])
    member = np.concatenate([other.member[pairs // H], hyp.member[pairs % H]], axis=1)
    is_hyp = np.arange(len(uni)) >= len(other.ids)
    if len(uni) > 1 and (uni[1:] < uni[:-1]).any():     # an other id sorts among them
        by_id = np.argsort(uni, kind="stable")
        uni, member, is_hyp = uni[by_id], member[:, by_id], is_hyp[by_id]
    U = len(uni)
    E = len(pairs)
    if U == 0:
        member = np.zeros((E, 1), bool)
        is_hyp = np.zeros(1, bool)
    is_safe = np.zeros(max(U, 1), bool)
    if U and safe:
        is_safe[:U] = np.isin(uni, np.array(sorted(safe), dtype=np.uint64))
    M = _pack(member)                                   # [E, nw]
    HYP = _pack(is_hyp[None])[0]
    OTH = _pack(~is_hyp[None] & (np.arange(max(U, 1)) < U)[None])[0]
    SAFE = _pack(is_safe[None])[0]
    counts = _popcount(M)
    # every index below the destination's last (highest) listed id (-1: lists nothing)
    last = np.where(member.any(1), member.shape[1] - 1 - member[:, ::-1].argmax(1), -1)
    below = _pack(np.arange(max(U, 1))[None, :] < last[:, None])   # [E, nw]
    tab = ListTables(epoch, None, _missing(M, HYP, OTH), counts, uni, M, HYP, OTH, below, SAFE)
    return replace(tab, qemu=qemu_codes(tab, M))     # QEMU's checks: each epoch's own list


def listed_other(history) -> Lists | None:
    """Per release, every other id ``history`` lists (its host and vCPU
    features); None in the hypercall view.  Read once per history."""
    table = history.other_table()
    if table is None:
        return None
    bk = ("lists", history.host, history.features)
    base = history.other._tables.get(bk)
    if base is None:
        base = history.other._tables[bk] = of_table(table)
    return base


@dataclass(frozen=True)
class SavedOther:
    """The other registers a VMM saves, per release (:func:`saved_other`)."""

    lists: Lists
    token: object          # hashable: the same saved lists give the same token


def saved_other(history, vmm) -> SavedOther:
    """Per release, the other ids ``vmm`` saves (its ``saves``: hidden ids left out).

    The lists are read once per history (kept with its other-register data,
    so its strategies and VMMs share them) and each VMM asks
    :func:`hcsim.model.vmm.facts` once about every id they hold.
    """
    if history.whole:
        ck = ("saved", history.host, history.features, vmm.key)
        hit = history.other._tables.get(ck)
        if hit is not None:
            return hit
    base = listed_other(history)
    if base is None:
        n = len(history.releases)
        return SavedOther(Lists(np.zeros(n, np.int64), np.zeros((1, 0), bool),
                                np.zeros(0, np.uint64)), None)
    cache = history.other._tables
    saves = facts(vmm, base.ids).saves
    kept = base if saves.all() else _distinct(base.epoch, base.member[:, saves],
                                              base.ids[saves])
    out = cache[ck] = SavedOther(kept, (history.host, history.features,
                                        np.packbits(saves).tobytes()))
    return out
