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
from typing import NamedTuple

import numpy as np

from hcsim.model.vmm import facts

NONE, HYPERCALL, OTHER, BOTH = 0, 1, 2, 3
#: Blame names by code, as the ``matrix`` csv spells them.
BLAMES = ("", "hypercall", "other", "both")

#: Words per block of row pairs (bounds each temporary to 16 MiB).
_BLOCK_WORDS = 1 << 21


class Meets(NamedTuple):
    """What source rows of one part meet on every destination row of it
    (each ``[S, L]``): whether the destination lacks some id (``lack``), some
    id not safe-missing (``unsafe``), some such id below the destination's
    own last id (``early``), and how many safe-missing ids it lacks
    (``nsafe``)."""

    lack: np.ndarray
    unsafe: np.ndarray
    early: np.ndarray
    nsafe: np.ndarray

    def take(self, rows: np.ndarray) -> Meets:
        return Meets(*(x[rows] for x in self))


@dataclass(frozen=True)
class Part:
    """One part of the saved lists: the other registers, or the hypercall
    registers (which all sort after them, so a list is an other part then a
    hypercall part, and QEMU's checks split into the two; :func:`tables`).

    Rows are the part's distinct lists (``Lists.member``), packed
    (bit ``k`` is ``ids[k]``)."""

    ids: np.ndarray        # [U] uint64, sorted
    members: np.ndarray    # [L, nw] packed lists
    counts: np.ndarray     # [L] ids per list
    safe: np.ndarray       # [nw] safe-missing ids
    below: np.ndarray      # [L, nw] ids below each list's last id
    meets: Meets           # every row against every row


def part(rows: Lists, safe: frozenset[int] = frozenset()) -> Part:
    """The :class:`Part` of lists ``rows`` with safe-missing ids ``safe``."""
    member = rows.member
    U = member.shape[1]
    M = _pack(member)
    is_safe = (np.isin(rows.ids, np.array(sorted(safe), np.uint64)) if safe
               else np.zeros(U, bool))
    SAFE = _pack(is_safe[None])[0]
    last = np.where(member.any(1), U - 1 - member[:, ::-1].argmax(1), -1) if U else \
        np.full(len(member), -1)
    below = _pack(np.arange(max(U, 1))[None, :] < last[:, None])
    return Part(rows.ids, M, _popcount(M), SAFE, below, meets(M, SAFE[None], M, below))


def meets(src: np.ndarray, safe: np.ndarray, dst: np.ndarray, below: np.ndarray) -> Meets:
    """:class:`Meets` of packed source rows ``src`` (``[S, nw]``, safe-missing
    ids ``safe``, ``[S, nw]`` or ``[1, nw]``) against destination rows ``dst``
    (``[L, nw]``, with their ``below`` masks)."""
    S, L = len(src), len(dst)
    out = Meets(np.zeros((S, L), bool), np.zeros((S, L), bool), np.zeros((S, L), bool),
                np.zeros((S, L), np.int64))
    absent = ~dst[None]
    any_safe = bool(safe.any())
    step = max(1, _BLOCK_WORDS // max(1, L * dst.shape[1]))
    for a in range(0, S, step):
        lack = src[a:a + step, None, :] & absent                    # [b, L, nw]
        out.lack[a:a + step] = lack.any(-1)
        if any_safe:
            lack_safe = lack & (safe[a:a + step] if len(safe) > 1 else safe)[:, None, :]
            out.nsafe[a:a + step] = _popcount(lack_safe)
            lack ^= lack_safe                   # the missing ids that are not safe
            out.unsafe[a:a + step] = lack.any(-1)
        else:                                   # none safe: every missing id counts
            out.unsafe[a:a + step] = out.lack[a:a + step]
        lack &= below[None]
        out.early[a:a + step] = lack.any(-1)
    return out


@dataclass(frozen=True)
class ListTables:
    """List epochs of the releases and the rule tables over epoch pairs.

    A list epoch is a pair of rows, one per :class:`Part` (``eo``, ``eh``);
    the parts are kept so that a source whose own drops differ
    (``qemu-tolerant``: zero-valued feature registers) can be evaluated
    against every destination epoch (:func:`qemu_codes`).
    """

    epoch: np.ndarray      # [n] list epoch of each release
    qemu: np.ndarray       # [E, E] int8 blame code of QEMU's count check and walk
    missing: np.ndarray    # [E, E] int8 blame code of the ids the destination lacks
    counts: np.ndarray     # [E] saved registers (the whole list)
    eo: np.ndarray         # [E] the other part's row of each epoch
    eh: np.ndarray         # [E] the hypercall part's row
    other: Part
    hyp: Part


def tables(hyp: Lists, other: Lists, safe: frozenset[int] = frozenset(),
           parts: tuple[Part, Part] | None = None) -> ListTables:
    """The tables for saved lists: per release, the hypercall ids ``hyp`` lists
    and the other ids ``other`` lists, each id below every hypercall id;
    ``parts``: their :func:`part` with ``safe`` if already made (a
    history's strategies share the other part).

    An incoming list is its other part then its hypercall part, so QEMU's
    checks (module docstring) split: the count check adds the two parts'
    counts; the walk's early ids are the other part's below the
    destination's last other id, or all its missing other ids once the
    destination lists a hypercall id (its last id is then one), and the
    hypercall part's below its last hypercall id.
    """
    if len(hyp.ids) and len(other.ids) and other.ids[-1] >= hyp.ids[0]:
        raise ValueError("an other id sorts among the hypercall ids")
    hp, op = parts if parts is not None else (part(hyp, safe), part(other, safe))
    # a list epoch is a (hypercall row, other row) pair; the rows are distinct
    # lists and the two id sets disjoint, so equal pairs are equal lists
    H = len(hyp.member)
    pairs, epoch = _ranks(other.epoch * H + hyp.epoch, len(other.member) * H)
    eo, eh = pairs // H, pairs % H
    counts = op.counts[eo] + hp.counts[eh]
    lack_o = op.meets.lack[eo[:, None], eo[None, :]]
    lack_h = hp.meets.lack[eh[:, None], eh[None, :]]
    missing = lack_h * np.int8(HYPERCALL) + lack_o * np.int8(OTHER)
    # QEMU's checks: each epoch's own list
    qemu = _codes(op, hp, eo, eh, counts, eo, counts, hp.meets.take(eh))
    return ListTables(epoch.reshape(-1), qemu, missing, counts, eo, eh, op, hp)


def _ranks(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` of keys in ``[0, bound)``: by
    a table of ``bound`` flags where that is small (a history's few lists)."""
    if bound > 1 << 16:
        return np.unique(keys, return_inverse=True)
    seen = np.zeros(bound, bool)
    seen[keys] = True
    return np.flatnonzero(seen), (np.cumsum(seen) - 1)[keys]


def _codes(op: Part, hp: Part, eo: np.ndarray, eh: np.ndarray, dst_counts: np.ndarray,
           so: np.ndarray, counts: np.ndarray, hm: Meets) -> np.ndarray:
    """``[S, E]`` QEMU blame codes of sources of other rows ``so``, ``counts``
    ids, and hypercall part meeting every hypercall row as ``hm``, against
    destination epochs of rows ``eo``, ``eh`` and ``dst_counts`` ids."""
    om = op.meets
    ix = (so[:, None], eo[None, :])
    fail = counts[:, None] - om.nsafe[ix] - hm.nsafe[:, eh] > dst_counts[None, :]
    hyp = np.where(fail, hm.unsafe[:, eh], hm.early[:, eh])
    # once the destination lists a hypercall id, every other id is early
    whole = fail | (hp.counts[eh] > 0)[None, :]
    oth = np.where(whole, om.unsafe[ix], om.early[ix])
    return hyp * np.int8(HYPERCALL) + oth * np.int8(OTHER)


def qemu_codes(tab: ListTables, src: np.ndarray, drops: np.ndarray | None = None
               ) -> np.ndarray:
    """``[S, E]`` QEMU blame codes of sources of list epochs ``src`` that also
    drop the hypercall ids ``drops`` (packed ``[S, nw]`` over
    ``tab.hyp.ids``; default none) the destination lacks, against every
    destination epoch."""
    src = np.asarray(src, np.int64)
    hp, sh = tab.hyp, tab.eh[src]
    hm = hp.meets.take(sh)
    some = None if drops is None else np.flatnonzero(drops.any(1))
    if some is not None and len(some):      # the rows that drop ids of their own
        got = meets(hp.members[sh[some]], drops[some] | hp.safe, hp.members, hp.below)
        for mine, theirs in zip(hm, got):
            mine[some] = theirs
    return _codes(tab.other, hp, tab.eo, tab.eh, tab.counts, tab.eo[src], tab.counts[src], hm)


def _pack(rows: np.ndarray) -> np.ndarray:
    """Bool rows ``[R, U]`` as ``uint64`` words ``[R, max(1, ceil(U / 64))]``
    (bit ``k % 64`` of word ``k // 64``)."""
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
    upto = np.searchsorted(lf[order], np.arange(n), side="right")     # non-decreasing
    change = np.ones(n, bool)
    change[1:] = upto[1:] != upto[:-1]
    states = upto[change]
    return Lists(np.cumsum(change) - 1, rank[None, :] < states[:, None], arr)


def of_spans(spans: Sequence[tuple[int, int, int]], n: int) -> Lists:
    """:class:`Lists` of ``[[other]]`` spans ``(id, first, end)`` (``end``
    exclusive) over ``n`` releases: what :func:`of_table` gives on their
    per-release tuples, without making them."""
    rid = np.array([s[0] for s in spans], np.uint64)
    first = np.clip(np.array([s[1] for s in spans], np.int64), 0, n)
    end = np.clip(np.array([s[2] for s in spans], np.int64), 0, n)
    keep = first < end
    first, end = first[keep], end[keep]
    ids, col = np.unique(rid[keep], return_inverse=True)
    col = col.reshape(-1)
    # the releases where some list changes; a span adds 1 from its first, -1 from its end
    # (an id's spans are apart: no two start, nor end, at one release)
    bounds = np.union1d(np.append(first, 0), end)
    bounds = bounds[bounds < n]
    cover = np.zeros((len(bounds) + 1, len(ids)), np.int8)
    cover[np.searchsorted(bounds, first), col] += 1
    cover[np.searchsorted(bounds, end), col] -= 1
    member = np.cumsum(cover[:len(bounds)], axis=0, dtype=np.int8) > 0
    epoch = np.searchsorted(bounds, np.arange(n), side="right") - 1
    return _distinct(epoch, member, ids)


def listed_other(history) -> Lists | None:
    """Per release, every other id ``history`` lists (its host and vCPU
    features); None in the hypercall view.  Read once per history."""
    if not history.whole:
        return None
    other = history.other
    bk = ("lists", history.host, history.features)
    base = other._tables.get(bk)
    if base is None:
        if other.reglists is None:          # spans: read as arrays
            other.check(history.host, history.features)
            base = of_spans(other.spans, len(other.names))
        else:
            base = of_table(history.other_table())
        other._tables[bk] = base
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
