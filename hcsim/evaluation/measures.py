"""The measures (DESIGN.md section 4), each computed once, on :class:`Outcomes`.

* :func:`counts` / :func:`shares`: outcome counts and shares per direction,
  optionally of the register era only (both ends at or after ``since``);
* :func:`silent_loss`: ``lost`` or ``mixed`` among off-diagonal pairs;
* :func:`cost_at` / :func:`cost`: registers, bytes and ioctls of a
  same-release save/restore (the spec, register by register);
* :func:`new_vm_pickup`, exhaustion, userspace patch, and :func:`score`,
  one scorecard row of ``hcsim compare``;
* :func:`scorecard_arrays`: the scorecard's arithmetic on counts, for many
  rows at once (what :func:`score_counts` uses for one, and a sweep for a
  batch: :func:`flat_columns`, :func:`last_costs`).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields
from math import ceil

import numpy as np

from hcsim.evaluation.outcomes import (
    CODES,
    DIRECTIONS,
    OUTCOMES,
    REFUSED,
    SHARE_PREFIX,
    SILENT,
    Outcomes,
    pack,
)
from hcsim.evaluation.spec import boot
from hcsim.model.history import History
from hcsim.model.kvm import Kernel
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Vmm, facts


@functools.lru_cache(maxsize=256)
def _directions(n: int, since: int) -> np.ndarray:
    """``[src, dst]``: 0 forward, 1 backward, 2 neither (the diagonal, or an end
    before ``since``), times 6 so that adding a code gives a bin of :func:`counts`.
    Sweeps ask for the same few again and again."""
    out = np.full((n, n), 2, np.int64)
    for k, direction in enumerate(DIRECTIONS):
        out[pair_mask(n, direction, since)] = k
    out *= len(OUTCOMES)
    out.flags.writeable = False
    return out


def pair_mask(n: int, direction: str, since: int = 0) -> np.ndarray:
    """``[src, dst]`` booleans: pairs of ``direction`` with both ends >= ``since``."""
    s, d = np.indices((n, n))
    mask = d > s if direction == "forward" else d < s
    return mask & (s >= since) & (d >= since)


def tally(codes: np.ndarray) -> np.ndarray:
    """How many of each outcome code, in :data:`OUTCOMES` order."""
    return np.bincount(np.asarray(codes).ravel(), minlength=len(OUTCOMES))


def counts(outcomes: Outcomes | np.ndarray, since: int = 0) -> np.ndarray:
    """Outcome counts ``[2, 6]``, forward then backward, configurations pooled.

    ``outcomes`` is an :class:`Outcomes` or its codes (``[src, dst]`` or
    ``[config, src, dst]``).  Only pairs with both ends at or after
    ``since`` count; the diagonal (``src == dst``) is neither direction.
    """
    codes = outcomes.codes if isinstance(outcomes, Outcomes) else np.asarray(outcomes)
    grid = codes if codes.ndim == 3 else codes[None]
    bins = (grid + _directions(grid.shape[1], since)).ravel()
    k = len(OUTCOMES)
    return np.bincount(bins, minlength=3 * k)[:2 * k].reshape(2, k)


def shares(outcomes: Outcomes | np.ndarray, direction: str, since: int = 0) -> dict[str, float]:
    """Share of each outcome among ``direction`` pairs (all 0 when there is none).

    ``direction`` is ``forward`` (source older) or ``backward``; only pairs
    with both ends at or after release index ``since`` count (the register
    era: ``since=history.registers_from``).
    """
    return _shares(counts(outcomes, since)[DIRECTIONS.index(direction)])


def silent_loss(outcomes: Outcomes | np.ndarray, since: int = 0) -> float:
    """Share of ``lost`` or ``mixed`` among off-diagonal pairs (0 when there is none).

    Pairs as :func:`shares`: both ends at or after release index ``since``.
    """
    return float(_silent(counts(outcomes, since)))


def loss_by_use(outcomes: Outcomes, since: int = 0) -> dict[str, float]:
    """:func:`silent_loss` split by how bad the loss is to a running guest.

    ``runtime``: the share of pairs (as :func:`silent_loss`) that lose a
    service the guest calls after boot (``[[service]] use = "runtime"``,
    the default); ``boot``: the share that lose only boot-time services
    (discovered and used once at boot, so harmless after it).  The two
    add up to :func:`silent_loss`.  Needs the outcomes' service sets.
    """
    if outcomes.lost is None:
        raise ValueError("outcomes evaluated without sets (sets=False)")
    runtime = np.array([s.use == "runtime" for s in outcomes.history.services], bool)
    mask = pack(runtime[None], outcomes.lost.shape[-1])[0]
    n = outcomes.n
    pairs = (pair_mask(n, "forward", since) | pair_mask(n, "backward", since))[None]
    silent = np.isin(outcomes.codes, [CODES[o] for o in SILENT]) & pairs
    hits = (outcomes.lost & mask).any(-1)
    total = int(pairs.sum()) * len(outcomes.codes) or 1
    return {"runtime": int((silent & hits).sum()) / total,
            "boot": int((silent & ~hits).sum()) / total}


@dataclass(frozen=True)
class Cost:
    """Cost of a same-release save/restore at one release.

    ``registers``, ``bytes_per_vcpu``, ``bytes_per_vm`` and ``ioctls`` are
    the hypercall registers (firmware and feature) the VMM saves; the
    ``list_*`` fields the whole list it saves (DESIGN.md section 9: other
    registers too, in the ``all`` view of a history that has them, else the
    same as the hypercall columns): registers, bytes per vCPU, and
    ``KVM_{GET,SET}_ONE_REG`` calls per migration (one of each per register
    and vCPU).
    """

    release: str
    registers: int | None
    bytes_per_vcpu: int | None
    bytes_per_vm: int | None
    ioctls: int | None
    floor_bytes: int
    list_registers: int | None = None
    list_bytes_per_vcpu: int | None = None
    list_ioctls: int | None = None


#: Per layout and (release, host): a fresh vCPU's register list and guest view.
#: The values hold no reference to the layout (a weak key its value refers to
#: would never be collected).
_FRESH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fresh(history: History, strategy: Strategy, release: int
          ) -> tuple[tuple[int, ...], frozenset[str]]:
    """A new VM at ``release`` (booted once per layout): what
    ``KVM_GET_REG_LIST`` lists, and the guest view."""
    per = _FRESH.setdefault(strategy.layout(history), {})
    key = (release, history.host)
    if key not in per:
        cpu = boot(Kernel(history, release, strategy), 1)[0]
        per[key] = (tuple(cpu.get_reg_list()), cpu.vm.guest_view())
    return per[key]


def _fresh_ids(history: History, strategy: Strategy, release: int) -> np.ndarray:
    """:func:`fresh`'s list as ``uint64`` ids (kept with it: a sweep asks once per VMM)."""
    per = _FRESH.setdefault(strategy.layout(history), {})
    key = ("ids", release, history.host)
    if key not in per:
        per[key] = np.array(fresh(history, strategy, release)[0], np.uint64)
        per[key].flags.writeable = False
    return per[key]


def registers(history: History, strategy: Strategy, release: int) -> dict[int, int]:
    """What a new VM's vCPU lists and reads at ``release``: ``{id: value}``."""
    cpu = boot(Kernel(history, release, strategy), 1)[0]
    return {rid: cpu.get_one_reg(rid) for rid in cpu.get_reg_list()}


def cost_at(history: History, strategy: Strategy, vmm: Vmm, release: int,
            vcpus: int = 1, feature_only: bool = False) -> Cost:
    """Registers saved, wire bytes and ioctls of one save/restore."""
    floor = ceil(len(history.supported(release)) / 8)
    name = history.releases[release]
    ids = _fresh_ids(history, strategy, release)
    unhandled, count, per_vcpu, whole, whole_bytes = _saved([ids], [vmm], feature_only)[0, 0].tolist()
    if unhandled:
        return Cost(name, None, None, None, None, floor)
    return Cost(name, count, per_vcpu, per_vcpu * vcpus, 2 * count * vcpus, floor,
                whole, whole_bytes, 2 * whole * vcpus)


def _saved(lists: Sequence[np.ndarray], vmms: Sequence[Vmm], feature_only: bool = False
           ) -> np.ndarray:
    """What each VMM saves of each register list (``uint64`` ids), ``[list, VMM, 5]``:
    ids it cannot handle; hypercall registers (classes 0x14 and 0x16, or 0x16
    alone with ``feature_only``) it saves and their wire bytes; registers it
    saves and their wire bytes (the whole list).

    Each is a sum over the list's ids (:func:`~hcsim.model.vmm.facts`), taken
    in two parts, each memoised by its content (:func:`_part_sums`): the
    layout's registers (classes 0x14 and 0x16: the same few lists from
    history to history, 2048 ids under ``full-bitmap``) and the other
    registers (one list per history, shared by its strategies).
    """
    keys = tuple(vmm.key for vmm in vmms)
    out = np.empty((len(lists), len(vmms), 5), np.int64)
    for k, ids in enumerate(lists):
        cls = (ids >> np.uint64(16)) & np.uint64(0xFFF)
        layout = (cls == 0x14) | (cls == 0x16)
        out[k] = (_part_sums(ids[layout], vmms, keys, feature_only)
                  + _part_sums(ids[~layout], vmms, keys, feature_only))
    return out


#: :func:`_part_sums` by (VMM keys, feature_only, ids): at most :data:`_PARTS_MAX`,
#: the oldest dropped first.
_PARTS: dict[tuple, np.ndarray] = {}
_PARTS_MAX = 512


def _part_sums(ids: np.ndarray, vmms: Sequence[Vmm], keys: tuple, feature_only: bool
               ) -> np.ndarray:
    """:func:`_saved`'s five sums ``[VMM, 5]`` over ``ids``."""
    key = (keys, feature_only, ids.tobytes())
    hit = _PARTS.get(key)
    if hit is None:
        cls = (ids >> np.uint64(16)) & np.uint64(0xFFF)
        hyp = (cls == 0x16) if feature_only else ((cls == 0x14) | (cls == 0x16))
        hit = np.empty((len(vmms), 5), np.int64)
        for v, vmm in enumerate(vmms):
            answers = facts(vmm, ids)
            saved = answers.saves & hyp
            hit[v] = ((~answers.handles).sum(), saved.sum(), answers.sizes[saved].sum(),
                      answers.saves.sum(), answers.sizes[answers.saves].sum())
        hit.flags.writeable = False
        if len(_PARTS) >= _PARTS_MAX:
            del _PARTS[next(iter(_PARTS))]
        _PARTS[key] = hit
    return hit


def last_costs(history: History, strategies: Sequence[Strategy], vmms: Sequence[Vmm],
               lists: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``bytes_per_vcpu`` and ``list_bytes_per_vcpu`` of the scorecard
    (:func:`cost_at` at the last release) of every strategy under every VMM,
    ``[strategy, VMM]`` floats, NaN where the VMM cannot handle a register.

    ``lists``: each strategy's new-VM list at the last release, if the caller
    has it (:func:`hcsim.evaluation.engine.fresh`); else a VM is booted."""
    last = len(history.releases) - 1
    if lists is None:
        lists = [_fresh_ids(history, s, last) for s in strategies]
    out = _saved(lists, vmms).astype(np.float64)
    out[out[..., 0] > 0] = np.nan
    return out[..., 2], out[..., 4]


def cost(history: History, strategy: Strategy, vmm: Vmm,
         vcpus: int = 1) -> list[Cost]:
    """Cost rows for every release."""
    return [cost_at(history, strategy, vmm, r, vcpus)
            for r in range(len(history.releases))]


def new_vm_pickup(history: History, strategy: Strategy, seen: int | None = None) -> float:
    """Share of the last release's services a default new VM sees (``seen``
    of them, if the caller counted them: :func:`hcsim.evaluation.engine.fresh`;
    else a VM is booted)."""
    last = len(history.releases) - 1
    supported = history.supported(last)
    if not supported:
        return 1.0
    if seen is None:
        seen = len(fresh(history, strategy, last)[1])
    return seen / len(supported)


def exhaustion(history: History, strategy: Strategy) -> str:
    """First release that lists a feature register beyond the reservation ("" if none)."""
    ex = strategy.layout(history).exhaustion()
    return history.releases[ex] if ex is not None else ""


@dataclass(frozen=True)
class Score:
    """One scorecard row."""

    strategy: str
    forward: dict[str, float]
    backward: dict[str, float]
    silent_loss: float
    bytes_per_vcpu: int | None
    pickup: float
    exhaustion: str
    userspace_patch: bool
    refused_by: dict | None = None     # {direction: {strategy, drift, both}} shares
    list_bytes_per_vcpu: int | None = None

    def flat(self) -> dict:
        """The row as ``hcsim compare`` prints it: ``fwd_<outcome>``, ``bwd_<outcome>``...,
        then ``list_bytes_per_vcpu`` and the refusals by blame
        (``fwd_refused_strategy``, ``fwd_refused_drift``, ``fwd_refused_both``, bwd
        likewise: :data:`REFUSAL_SPLIT`)."""
        row = {"strategy": self.strategy}
        for direction in DIRECTIONS:
            for o, v in getattr(self, direction).items():
                row[f"{SHARE_PREFIX[direction]}_{o}"] = v
        row.update({k: getattr(self, k) for k in _FLAT})
        for direction in DIRECTIONS:
            for col, v in (self.refused_by or {}).get(direction, {}).items():
                row[f"{SHARE_PREFIX[direction]}_refused_{col}"] = v
        return row


#: The scalar fields of :class:`Score`, in order, as :meth:`Score.flat` lists them.
_FLAT = tuple(f.name for f in fields(Score)
              if f.name not in ("strategy", "refused_by", *DIRECTIONS))

#: Scorecard columns of refusals by blame: ``strategy`` (the hypercall
#: registers, firmware or feature, trip the check: what a strategy and its
#: firmware control), ``drift`` (other registers only: system-register drift
#: the strategy does not control), ``both``.
REFUSAL_SPLIT = {1: "strategy", 2: "drift", 3: "both"}


def blamed(outcomes: Outcomes, since: int = 0) -> np.ndarray:
    """Refused pairs by blame code ``[2, 4]`` (forward, backward), configurations
    pooled; pairs as :func:`counts`."""
    codes, blames = outcomes.codes, outcomes.blame_codes()
    grid = codes if codes.ndim == 3 else codes[None]
    blames = blames if blames.ndim == 3 else blames[None]
    # bin = direction * 4 + blame of a refused pair; 8 and up: not refused, or neither direction
    direction = _directions(grid.shape[1], since) // len(OUTCOMES)
    bins = np.where(grid == REFUSED, direction * 4 + blames, 8)
    return np.bincount(bins.ravel(), minlength=12)[:8].reshape(2, 4)


def refusals_by_blame(outcomes: Outcomes, since: int = 0) -> dict[str, dict[str, float]]:
    """Share of each direction's pairs refused, by blame (:data:`REFUSAL_SPLIT`)."""
    return _by_blame(scorecard_arrays(counts(outcomes, since), blamed(outcomes, since))[3])


def _by_blame(split: np.ndarray) -> dict[str, dict[str, float]]:
    """``[2, 3]`` shares (:func:`scorecard_arrays`) as ``{direction: {blame: share}}``."""
    return {name: dict(zip(REFUSAL_SPLIT.values(), split[k].tolist()))
            for k, name in enumerate(DIRECTIONS)}


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """``part / whole`` (float64, broadcast), 0 where ``whole`` is 0."""
    return part / np.where(whole == 0, 1, whole)


_SILENT_CODES = [CODES[o] for o in SILENT]


def scorecard_arrays(counted: np.ndarray, refused: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The scorecard's arithmetic on counts, any number of rows at once.

    From outcome counts ``[..., 2, 6]`` (:func:`counts`) and refused pairs by
    blame ``[..., 2, 4]`` (:func:`blamed`): the outcome shares of each
    direction ``[..., 2, 6]``, the silent loss ``[...]`` (``lost`` or ``mixed``
    among both directions' pairs), whether a userspace patch is needed
    ``[...]`` (forward ``preserved`` below 1) and the refused shares by blame
    ``[..., 2, 3]`` (:data:`REFUSAL_SPLIT` order), each of its direction's
    pairs.  A direction without pairs has every share 0.  Counts are exact
    integers, so each share is the one correctly rounded quotient whether
    asked of one row (:func:`score_counts`) or of a sweep's batch.
    """
    counted = np.asarray(counted, np.int64)
    refused = np.asarray(refused, np.int64)
    pairs = counted.sum(-1, keepdims=True)                      # [..., 2, 1]
    shares = _ratio(counted, pairs)
    split = _ratio(refused[..., list(REFUSAL_SPLIT)], pairs)
    return shares, _silent(counted), shares[..., 0, CODES["preserved"]] < 1.0, split


def _silent(counted: np.ndarray) -> np.ndarray:
    """``lost`` or ``mixed`` among both directions' pairs, from counts ``[..., 2, 6]``."""
    both = np.asarray(counted, np.int64).sum(-2)
    return _ratio(both[..., _SILENT_CODES].sum(-1), both.sum(-1))


def _shares(row: np.ndarray) -> dict[str, float]:
    return dict(zip(OUTCOMES, _ratio(row, row.sum()).tolist()))


def score(outcomes: Outcomes, since: int = 0) -> Score:
    """Summarise one strategy's outcomes and cost under one VMM (pairs from ``since``)."""
    return score_counts(outcomes.history, outcomes.strategy, outcomes.vmm,
                        counts(outcomes, since), blamed(outcomes, since))


def score_counts(history: History, strategy: Strategy, vmm: Vmm, counted: np.ndarray,
                 refused: np.ndarray) -> Score:
    """:func:`score` from the counts alone: outcome counts ``[2, 6]`` (:func:`counts`)
    and refused pairs by blame ``[2, 4]`` (:func:`blamed`), as
    :func:`hcsim.evaluation.engine.tally` gives them without the matrix
    (the arithmetic: :func:`scorecard_arrays`)."""
    shares, silent, patch, split = scorecard_arrays(counted, refused)
    last = cost_at(history, strategy, vmm, len(history.releases) - 1)
    forward, backward = (dict(zip(OUTCOMES, row.tolist())) for row in shares)
    return Score(strategy.spec, forward, backward, float(silent), last.bytes_per_vcpu,
                 new_vm_pickup(history, strategy), exhaustion(history, strategy),
                 bool(patch), _by_blame(split), last.list_bytes_per_vcpu)


def flat_columns(counted: np.ndarray, refused: np.ndarray, **given: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """:meth:`Score.flat` of many rows at once, as columns in its order.

    ``counted`` ``[rows, 2, 6]`` and ``refused`` ``[rows, 2, 4]`` give the
    shares, ``silent_loss`` and ``userspace_patch`` (:func:`scorecard_arrays`);
    ``given`` the other fields of :class:`Score` as arrays of ``rows``
    (``bytes_per_vcpu``...); a field not given (``strategy``, say) is left out.
    """
    shares, silent, patch, split = scorecard_arrays(counted, refused)
    unknown = set(given) - set(_FLAT)
    if unknown:
        raise ValueError(f"not a scalar field of Score: {', '.join(sorted(unknown))}")
    given = {**given, "silent_loss": silent, "userspace_patch": patch}
    out = {f"{SHARE_PREFIX[d]}_{o}": shares[:, k, j]
           for k, d in enumerate(DIRECTIONS) for j, o in enumerate(OUTCOMES)}
    out.update({f: given[f] for f in _FLAT if f in given})
    out.update({f"{SHARE_PREFIX[d]}_refused_{col}": split[:, k, b]
                for k, d in enumerate(DIRECTIONS) for b, col in enumerate(REFUSAL_SPLIT.values())})
    return out
