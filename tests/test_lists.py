"""The saved lists as membership tables (:mod:`hcsim.evaluation.lists`).

The list rules themselves (QEMU's count check and walk, a snapshot writer's
``-ENOENT``) are checked against the spec by the differential tests; these
check the tables they read: every release's list is the one it was given,
and two releases share a list epoch exactly when their lists are equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcsim.evaluation import lists

OTHER = 0x6030000000130000     # other ids sort before the hypercall ids below
HYP = 0x6030000000140000


@st.composite
def tables(draw) -> tuple[tuple[int, ...], ...]:
    """Per release, a sorted tuple of other ids; equal lists are sometimes one
    object (as OtherRegisters.table gives them), sometimes equal copies."""
    n = draw(st.integers(1, 12))
    pool = draw(st.lists(st.integers(0, 40), min_size=0, max_size=12, unique=True))
    out: list[tuple[int, ...]] = []
    for r in range(n):
        if r and draw(st.booleans()):
            same = out[-1] if draw(st.booleans()) else tuple(list(out[-1]))
            out.append(same)
            continue
        chosen = draw(st.lists(st.sampled_from(pool), unique=True)) if pool else []
        out.append(tuple(sorted(OTHER + k for k in chosen)))
    return tuple(out)


def listed(tab: lists.Lists, r: int) -> set[int]:
    return set(tab.ids[tab.member[tab.epoch[r]]].tolist())


@given(tables())
def test_of_table_keeps_every_list_once(table):
    got = lists.of_table(table)
    assert (got.ids[1:] > got.ids[:-1]).all()         # sorted, distinct
    for r, ids in enumerate(table):
        assert listed(got, r) == set(ids)
    rows = {tuple(row) for row in got.member.tolist()}
    assert len(rows) == len(got.member)            # equal lists share one row


@given(st.integers(1, 15), st.lists(st.integers(-2, 20), max_size=10))
def test_listed_by_release_lists_what_is_listed_so_far(n, starts):
    ids = [HYP + 7 * k for k in range(len(starts))][::-1]      # not in id order
    got = lists.listed_by_release(n, starts, ids)
    for r in range(n):
        assert listed(got, r) == {i for i, s in zip(ids, starts) if s <= r}


@given(tables(), st.lists(st.integers(0, 12), max_size=6), st.data())
def test_a_list_epoch_is_an_equal_whole_list(table, starts, data):
    n = len(table)
    hyp = lists.listed_by_release(n, starts, [HYP + k for k in range(len(starts))])
    other = lists.of_table(table)
    safe = frozenset(data.draw(st.lists(st.sampled_from(sorted({*other.ids.tolist(), HYP}))))
                     if len(other.ids) else [])
    tab = lists.tables(hyp, other, safe)
    whole = [frozenset(table[r]) | {HYP + k for k, s in enumerate(starts) if s <= r}
             for r in range(n)]
    for r in range(n):
        for s in range(n):
            assert (tab.epoch[r] == tab.epoch[s]) == (whole[r] == whole[s])
        assert tab.counts[tab.epoch[r]] == len(whole[r])
    # a source epoch meets no missing id on a destination listing a superset
    for r in range(n):
        for s in range(n):
            if whole[r] <= whole[s]:
                assert tab.missing[tab.epoch[r], tab.epoch[s]] == lists.NONE
                assert tab.qemu[tab.epoch[r], tab.epoch[s]] == lists.NONE
            else:
                lacks = whole[r] - whole[s]
                want = (lists.HYPERCALL * any(i >= HYP for i in lacks)
                        + lists.OTHER * any(i < HYP for i in lacks))
                assert tab.missing[tab.epoch[r], tab.epoch[s]] == want


def blame(ids) -> int:
    return lists.HYPERCALL * any(i >= HYP for i in ids) + lists.OTHER * any(i < HYP for i in ids)


def qemu(src: frozenset, dst: frozenset, safe: frozenset) -> int:
    """QEMU's cpu_post_load, plainly: incoming ids the destination lacks that
    are safe-missing are dropped; more incoming ids than the destination's
    refuses (blaming every unsafe missing id), else an unsafe missing id
    sorting before the destination's last id does."""
    lack = src - dst
    unsafe = lack - safe
    if len(src) - len(lack & safe) > len(dst):
        return blame(unsafe)
    return blame({i for i in unsafe if dst and i < max(dst)})


@settings(max_examples=400, deadline=None)
@given(tables(), st.lists(st.integers(0, 12), max_size=6), st.data())
def test_qemu_codes_are_qemus_checks_on_every_pair(table, starts, data):
    """The ``qemu`` table over list-epoch pairs, and :func:`lists.qemu_codes`
    of sources that drop extra hypercall ids, against :func:`qemu` on the
    whole lists (the two parts' tables combined as :func:`lists.tables` says)."""
    n = len(table)
    hyp_ids = [HYP + k for k in range(len(starts))]
    hyp = lists.listed_by_release(n, starts, hyp_ids)
    other = lists.of_table(table)
    pool = sorted({*other.ids.tolist(), *hyp_ids})
    safe = frozenset(data.draw(st.lists(st.sampled_from(pool))) if pool else [])
    tab = lists.tables(hyp, other, safe)
    whole = [frozenset(table[r]) | {HYP + k for k, s in enumerate(starts) if s <= r}
             for r in range(n)]
    for r in range(n):
        for s in range(n):
            assert tab.qemu[tab.epoch[r], tab.epoch[s]] == qemu(whole[r], whole[s], safe)
    # qemu-tolerant's drops: hypercall (feature) registers only, each source its own
    E = len(tab.counts)
    drops = [frozenset(data.draw(st.lists(st.sampled_from(hyp_ids))) if hyp_ids else [])
             for _ in range(E)]
    drop = lists._pack(np.stack([np.isin(tab.hyp.ids, sorted(d)) for d in drops]))
    got = lists.qemu_codes(tab, np.arange(E), drop)
    assert (lists.qemu_codes(tab, np.arange(E)) == tab.qemu).all()
    for r in range(n):
        for s in range(n):
            e = tab.epoch[r]
            assert got[e, tab.epoch[s]] == qemu(whole[r], whole[s], safe | drops[e])


def test_an_other_id_among_the_hypercall_ids_is_refused():
    """The split into parts needs every other id below every hypercall id."""
    hyp = lists.listed_by_release(2, [0], [HYP])
    other = lists.of_table(((HYP + 1,), (OTHER,)))
    with pytest.raises(ValueError, match="sorts among"):
        lists.tables(hyp, other)


@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 20), st.integers(-2, 14),
                                              st.integers(0, 16)), max_size=15))
def test_of_spans_is_of_table_on_the_spans_lists(n, raw):
    """``[[other]]`` spans read as arrays give the lists their per-release
    tuples give (:func:`hcsim.model.other._lists`, what the spec reads)."""
    from hcsim.model.other import _lists
    # valid entries (hcsim.model.other.from_entries): first < end, an id's spans apart
    last: dict[int, int] = {}
    kept = []
    for k, a, b in sorted(raw, key=lambda t: (t[0], t[1])):
        if a < b and a >= last.get(k, -99):
            kept.append((OTHER + k, a, b))
            last[k] = b
    spans = tuple(kept)
    got, want = lists.of_spans(spans, n), lists.of_table(_lists(spans, n))
    for r in range(n):
        assert listed(got, r) == listed(want, r)
    assert (got.epoch == want.epoch).all()
    assert len(got.member) == len(want.member)
