"""The vectorised engine: every (configuration, source, destination) triple at once.

:mod:`hcsim.model.kvm` + :mod:`hcsim.model.vmm` (driven by :func:`hcsim.evaluation.spec.migrate`)
are the definition of right; this module computes the same outcome, gained
set and lost set for every triple with numpy, and is checked against the
spec on every triple by ``tests/test_engine_differential.py``.

How a migration reduces to word operations
------------------------------------------
Services are bits of packed ``uint64`` words (service ``k`` is bit ``k % 64``
of word ``k // 64``, in ``history.services`` order).  Everything the spec
does depends on the release only through a few per-release sets, all read
off :meth:`hcsim.model.strategies.Strategy.layout`:

* ``SUP[r]``: services supported (introduced at or before ``r``);
* ``LA[r]`` / ``LANY[r]``: covered services all / some of whose registers
  are listed (``FeatureReg.listed_from <= r``);
* ``SL[r]``: services with a slot in a *strict* register listed at ``r``.

On the source the VMM configures the VM (:meth:`hcsim.model.vmm.Vmm.configure`
writes every feature register it saves with the reset value minus the bits
of services turned off; crosvm saves none, so it cannot configure), so a
listed slot of service ``k`` holds ``V = SUP[s] & ON & ~OFF[c]`` and the
guest sees ``B = SUP[s] & (~COV | (LA[s] & V))`` (everything supported
before ``registers_from``).  On the destination a slot is written from the
stream when its register is listed on both sides (and saved), else it keeps
its fill value: the reset value (QEMU writes back what it read at creation;
the others leave it), 0 under ``zero-unknown`` or after invalidate-on-write
cleared the bitmaps (a snapshot-only writer's first successful write; QEMU
rewrites its whole list, so clearing changes nothing there).  With
``F = ON`` or ``0`` per source that gives, per source row,
``A = (LA[s] & V) | (~LANY[s] & F) | (LANY[s] & ~LA[s] & V & F)`` and per
pair ``after = D1[d] | (D2[d] & A)`` with ``D1 = SUP & ~COV`` and
``D2 = SUP & LA`` (``D1 = SUP``, ``D2 = 0`` before ``registers_from``); RAZ/WI
masking with the destination's known bits is the ``& SUP[d]`` inside both.

Register and firmware lists only grow with the release, so a migration to an
older kernel is the only one that meets extra ids, and a restore fails
loudly exactly when the destination is older than a per-source threshold
``T[c, s]`` (``refused iff d < T``):

* a firmware register the destination lacks (snapshot writers: ``-ENOENT``;
  QEMU: the incoming count exceeds its own, ``cpreg_vmstate_array_len``);
* a feature register the destination lacks (same two errors); under
  ``qemu-tolerant`` only registers whose value is non-zero count, the others
  are dropped before the count check;
* a set bit of a service the destination does not know in a strict register
  (``-EINVAL``);

plus the firmware values the destination does not accept (``-EINVAL``,
e.g. a newer ``PSCI_VERSION``), a table over pairs of firmware epochs.
Because an extra incoming id always makes QEMU's count exceed its own, QEMU's
silent drop of ids sorting after its last one can never be reached by a
history (it needs a destination listing ids the source lacks *and* lacking
ids the source has); the differential tests confirm it.  ``unsupported``
(the VMM saves a register of a width it cannot handle, on either side) wins
over everything, as in :func:`hcsim.evaluation.spec.migrate`.

Release compression
-------------------
All these sets are piecewise constant over releases: they change only where
a service, a firmware entry or change, a register listing or
``registers_from`` starts.  Releases between two such boundaries (an
*epoch*) behave identically, so by default the engine evaluates one
representative per epoch and expands (``compress=True``); ``compress=False``
evaluates every release pair, chunk by chunk (the dense kernel that
``hcsim bench`` times).  Both give identical results.

Several policies and strategies at once
---------------------------------------
A history's layouts share its services, firmware epochs and the releases
where those change (:class:`_HistoryArrays`, kept in ``History.memo``);
a layout's policies share its epochs and most of their source rows (the
slot values, the guest view, the thresholds: :class:`_Configured`, built
once per layout and setting).  Policies that read the same of every
register share one :class:`Model` (:func:`model`); :func:`tallies` counts
the distinct models of a history's strategies together: their source rows
are stacked through one :func:`_kernel` pass and one weighted count over
epoch pairs per set of epochs (a sweep's layouts of one history share
theirs), each model's list codes, unsupported releases, destination words
and strict groups carried per row.  A sweep's arrays hold a few dozen
epochs, so the cost is in numpy calls, not in pairs: one pass per history
instead of one per policy.

Assumptions checked when a model is built (:class:`EngineUnsupported` if a
strategy, VMM or configuration breaks them; :func:`supports` asks first):
every bit slot belongs to one service; every feature register is a class
0x16 register of the strategy's width; the VMM saves every feature register
or none (its ``saves`` asked of every register of the layout) and every
firmware register; it restores with the generic rule of
:class:`hcsim.model.vmm.Vmm`, reading its :class:`~hcsim.model.vmm.RestoreRule`
(a snapshot writer, or a whole-list writer with QEMU's count check; no
tolerated ids); configurations carry no firmware values.  ``handles`` is
asked of every register, so ``unsupported`` starts at the first release
listing one the VMM cannot handle.  Migrations use one vCPU and the
history's host CPU profile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

from hcsim.errors import InputError
from hcsim.evaluation import lists
from hcsim.evaluation.outcomes import OUTCOMES, REFUSED, UNSUPPORTED, Outcomes, pack, unpack, words_for
from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.regs import KVM_REG_ARM_FW_FEAT_BMAP, size_field
from hcsim.model.strategies import Strategy
from hcsim.model.strategies.base import Layout
from hcsim.model.vmm import Facts, Vmm, facts

#: Pairs evaluated per chunk: the kernel's scratch is about 18 bytes per
#: pair (two uint64 and two bool arrays; more words and the packed sets of
#: :func:`evaluate` multiply it), about 1.2 MiB per chunk, which stays in
#: cache; measured best between 2**15 and 2**18 on the bench workload.
DEFAULT_CHUNK_PAIRS = 1 << 16

_NONE = -1                          # "no threshold": no destination is older
_NEVER = np.iinfo(np.int64).max     # a listing threshold never reached


class EngineUnsupported(InputError):
    """The engine does not model this history, strategy, VMM or configuration.

    Raised, never hidden: :func:`hcsim.evaluation.backends.evaluate` runs
    the spec instead under ``backend="auto"`` and says so.
    """


# -- what a strategy's layout means per service ---------------------------------------

class _LayoutArrays:
    """Per-service, per-register and per-release arrays of one :class:`Layout`.

    VMM-independent, built once per layout (kept in ``Layout.memo``); the
    parts that depend on the history alone are its :class:`_HistoryArrays`'
    (shared, read-only).  The per-release sets are tables ``[n, nw]``: row
    ``r`` holds the services whose threshold is at or below ``r``.
    """

    def __init__(self, layout: Layout, width: int):
        h = layout.history
        ha = _history_arrays(h)
        self.history = h
        self.n, self.rf, self.names, self.index = ha.n, ha.rf, ha.names, ha.index
        K, nw = self.K, self.nw = ha.K, ha.nw
        self.intro, self.on, self.sup = ha.intro, ha.on, ha.sup
        self.fw_intro, self.fw_ids = ha.fw_intro, ha.fw_ids
        self.fw_epoch, self.fw_bad, self.fw_threshold = ha.fw_epoch, ha.fw_bad, ha.fw_threshold
        ids, widths, self.reg_lf, strict = layout.columns
        if len(ids) and not ((widths == width).all()
                              and (((ids >> np.uint64(52)) & np.uint64(0xF))
                                   == np.uint64(size_field(width))).all()
                              and (((ids >> np.uint64(16)) & np.uint64(0xFFF))
                                   == np.uint64(KVM_REG_ARM_FW_FEAT_BMAP)).all()):
            raise EngineUnsupported(f"a feature register is not a class 0x16 U{width} register")
        self.cov = pack(np.array([bool(b) for b in layout.bits], bool), nw)
        # every (service, register position, bit) slot of the layout, flat
        sizes = np.array([len(b) for b in layout.bits], dtype=np.int64)
        slots = np.array([slot for b in layout.bits for slot in b], dtype=np.int64).reshape(-1, 2)
        owner = self.slot_owner = np.repeat(np.arange(K), sizes)
        pos = self.slot_reg = slots[:, 0]
        if len(np.unique(pos * (1 << 16) + slots[:, 1])) != len(pos):
            raise EngineUnsupported("a bit slot of the layout controls two services")
        lf = self.reg_lf[pos]
        lf_all = np.full(K, -1, np.int64)
        np.maximum.at(lf_all, owner, lf)
        lf_all[sizes == 0] = _NEVER
        lf_any = np.full(K, _NEVER, np.int64)
        np.minimum.at(lf_any, owner, lf)
        lf_strict = np.full(K, _NEVER, np.int64)
        hard = strict[pos]
        np.minimum.at(lf_strict, owner[hard], lf[hard])
        self.any_strict = bool(hard.any())
        # Strict registers grouped by the release that lists them, with the
        # services that have a slot in each group (the whole-list rule).
        self.strict_lf, self.strict_members = self._groups(lf[hard], owner[hard])
        self.listed_all = self._table(lf_all)
        self.listed_any = self._table(lf_any)
        self.strict_listed = self._table(lf_strict)
        # Registers grouped by the release that lists them: which services
        # have a slot in a register of each group (for qemu-tolerant's drop).
        self.group_lf, members = self._groups(lf, owner)
        self.group_members = pack(members, nw)
        self.reg_lf_sorted = np.unique(self.reg_lf)
        self.reg_ids = ids       # uint64, sorted (read-only)
        # the history's cuts and where this layout lists a register
        self.starts = _in_range(np.union1d(ha.cuts, self.reg_lf_sorted), self.n)
        self.epoch_weights: tuple | None = None    # _epoch_weights, built when asked
        self.exhaustion = layout.exhaustion()
        self.models: dict[tuple, Model | tuple] = {}     # by policy and behaviour; _answers; events; fresh
        self.lists: dict = {}     # list tables of its VMMs (a history without other registers)
        self._configured: dict = {}     # configured(), per source releases and setting

    def configured(self, rel: np.ndarray, off: np.ndarray, on: np.ndarray) -> _Configured:
        """What a VM configured with ``off``/``on`` (``[C, nw]``) holds at source
        releases ``rel``, whatever the VMM (:class:`_Configured`).  Kept for
        the layout's other VMMs."""
        key = (rel.tobytes(), off.tobytes(), on.tobytes())
        hit = self._configured.get(key)
        if hit is None:
            if len(self._configured) >= 16:
                self._configured.clear()
            hit = self._configured[key] = _Configured(self, rel, off, on)
        return hit

    def forget(self) -> None:
        """Drop the models, list tables and configured rows kept here (they
        refer back to these arrays: :func:`forget`)."""
        self.models.clear()
        self.lists.clear()
        self._configured.clear()

    def _groups(self, lf: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct listing releases of some slots (``lf``, sorted) and
        ``[G, K]`` bool: which services (``owner``) have a slot in each."""
        values, group = np.unique(lf, return_inverse=True)
        members = np.zeros((len(values), self.K), bool)
        members[group.reshape(-1), owner] = True
        return values, members

    def services_of(self, regs: np.ndarray) -> np.ndarray:
        """``[len(regs), K]`` bool: which services have a slot in each register
        (positions ``regs``)."""
        row = np.full(len(self.reg_lf), -1, np.int64)
        row[regs] = np.arange(len(regs))
        at = row[self.slot_reg]
        inside = at >= 0
        out = np.zeros((len(regs), self.K), bool)
        out[at[inside], self.slot_owner[inside]] = True
        return out

    def _table(self, thresholds: np.ndarray) -> np.ndarray:
        return _table(thresholds, self.n, self.nw)


class _HistoryArrays:
    """What every layout of one history shares: its services, firmware
    epochs and the releases where those change (kept in ``History.memo``)."""

    def __init__(self, h: History):
        n = self.n = len(h.releases)
        self.rf = h.registers_from
        self.names = tuple(s.name for s in h.services)
        self.index = {name: k for k, name in enumerate(self.names)}
        self.K = len(h.services)
        nw = self.nw = words_for(self.K)
        self.intro = np.array([s.introduced for s in h.services], dtype=np.int64)
        self.on = pack(np.array([s.default_on for s in h.services], bool), nw)
        self.sup = _table(self.intro, n, nw)
        self.fw_intro = np.array([f.introduced for f in h.firmware], dtype=np.int64)
        self.fw_ids = np.array([f.id for f in h.firmware], dtype=np.uint64)
        self.fw_epoch, self.fw_bad = self._firmware_epochs(h)
        self.fw_threshold = self._firmware_thresholds()
        self.cuts = self._cuts(h)
        for a in (self.intro, self.on, self.sup, self.fw_intro, self.fw_ids, self.fw_epoch,
                  self.fw_bad, self.cuts):
            a.flags.writeable = False

    def _firmware_epochs(self, h: History) -> tuple[np.ndarray, np.ndarray]:
        """Firmware epoch of every release, and which epoch pairs refuse.

        ``bad[e, f]``: a VM created in epoch ``e`` saves a firmware value that
        a kernel of epoch ``f`` rejects (``-EINVAL``) for an entry both list.
        Values come from :meth:`hcsim.model.history.Firmware.at` with the history's
        host profile (a profile's values do not change with the release).
        """
        n = self.n
        if not h.firmware:
            return np.zeros(n, np.int64), np.zeros((1, 1), bool)
        rel = np.arange(n)
        segs, values = [], []
        for f in h.firmware:
            starts = np.array([start for start, _ in f.values], dtype=np.int64)
            seg = (np.zeros(n, np.int64) if h.host in f.hosts
                   else np.searchsorted(starts, rel, side="right") - 1)
            seg[rel < f.introduced] = -1
            segs.append(seg)
            values.append([f.at(int(starts[k]) if h.host not in f.hosts else f.introduced,
                                h.host) for k in range(len(starts))])
        segs = np.stack(segs)                                   # [F, n]
        change = np.concatenate([[False], (segs[:, 1:] != segs[:, :-1]).any(0)])
        epoch = np.cumsum(change)
        first = np.nonzero(np.concatenate([[True], change[1:]]))[0]
        E = len(first)
        bad = np.zeros((E, E), bool)
        for seg, vals in zip(segs, values):
            table = np.array([[a.reset not in b.accepts for b in vals] for a in vals])
            at = seg[first]
            both = (at[:, None] >= 0) & (at[None, :] >= 0)
            bad |= both & table[np.maximum(at, 0)[:, None], np.maximum(at, 0)[None, :]]
        return epoch, bad

    def _firmware_thresholds(self) -> np.ndarray | None:
        """Per firmware epoch, the release below which a restore is refused.

        Usually a kernel rejects a value only on older kernels (a newer
        ``PSCI_VERSION``), so the bad destinations of each source epoch are
        the releases before some threshold and the refusal folds into
        ``T``.  None when some row is not of that shape (then the kernel
        looks the table up per pair).
        """
        bad, fe = self.fw_bad, self.fw_epoch
        first = np.searchsorted(fe, np.arange(len(bad)))    # first release of each epoch
        k = np.where(bad.all(1), len(bad), np.argmin(bad, axis=1))
        after = np.arange(len(bad))[None, :] >= k[:, None]
        if (bad & after).any():
            return None
        out = np.where(k < len(bad), first[np.minimum(k, len(bad) - 1)], self.n)
        return np.where(bad.any(1), out, _NONE).astype(np.int64)

    def _cuts(self, h: History) -> np.ndarray:
        """The releases where the history's own sets change (services, firmware,
        other registers); a layout adds the releases listing its registers."""
        n = self.n
        cuts = [0, self.rf, *self.intro.tolist(), *self.fw_intro.tolist()]
        cuts += [start for f in h.firmware for start, _ in f.values]
        fe = self.fw_epoch
        cuts += (np.nonzero(fe[1:] != fe[:-1])[0] + 1).tolist()
        other = lists.listed_other(h)
        if other is not None:   # where the other registers change (DESIGN.md section 9)
            cuts += (np.nonzero(other.epoch[1:] != other.epoch[:-1])[0] + 1).tolist()
        return _in_range(np.unique(np.array(cuts, dtype=np.int64)), n)


def _in_range(cuts: np.ndarray, n: int) -> np.ndarray:
    """The sorted ``cuts`` that are releases (``0 <= cut < n``)."""
    return cuts[(cuts >= 0) & (cuts < n)]


def _table(thresholds: np.ndarray, n: int, nw: int) -> np.ndarray:
    """``[n, nw]``: row ``r`` has the services with ``threshold <= r``."""
    add = np.zeros((n, nw), np.uint64)
    ks = np.nonzero(thresholds < n)[0]
    if len(ks):
        np.bitwise_or.at(add, (np.maximum(thresholds[ks], 0), ks // 64),
                         np.left_shift(np.uint64(1), (ks % 64).astype(np.uint64)))
    return np.bitwise_or.accumulate(add, axis=0)


def _history_arrays(h: History) -> _HistoryArrays:
    hit = h.memo.get("engine")
    if hit is None:
        hit = h.memo["engine"] = _HistoryArrays(h)
    return hit


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class _Configured:
    """The source rows of one layout, releases ``rel`` and setting, as far
    as they do not depend on the VMM, and the parts several VMMs' rows
    share, each computed when a VMM first asks and kept read-only:
    ``LA``, ``LANY`` (``[1, R, nw]``), the slot values ``V`` and the guest
    view ``B`` (``[C, R, nw]``); :meth:`Model.sources` reads them.
    """

    def __init__(self, la: _LayoutArrays, rel: np.ndarray, off: np.ndarray, on: np.ndarray):
        self.la, self.rel = la, rel
        self.C, self.R = off.shape[0], len(rel)
        sup = la.sup[rel][None]                                 # [1, R, nw]
        self.LA = la.listed_all[rel][None]
        self.LANY = la.listed_any[rel][None]
        self.V = sup & ((la.on | on) & ~off)[:, None, :]        # [C, R, nw]
        pre = (rel < la.rf)[None, :, None]
        self.B = np.where(pre, sup, sup & (~la.cov | (self.LA & self.V)))
        for a in (self.LA, self.LANY, self.V, self.B):
            a.flags.writeable = False
        self._memo: dict = {}

    def _rows(self, a: np.ndarray) -> np.ndarray:
        """``[R]`` or ``[C, R, ...]`` as ``[C * R, ...]`` rows (read-only)."""
        if a.ndim == 1:
            return _frozen(np.tile(a, self.C))
        return _frozen(np.ascontiguousarray(a.reshape(self.C * self.R, *a.shape[2:])))

    def memo(self, key, build):
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = build()
        return hit

    @cached_property
    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row's release, firmware epoch and guest view."""
        return self._rows(self.rel), self._rows(self.la.fw_epoch[self.rel]), self._rows(self.B)

    @cached_property
    def bits(self) -> np.ndarray:
        """``V`` as ``[C, R, K]`` bools."""
        return unpack(self.V, self.la.K)

    def A(self, fill: np.ndarray, saves_features: bool, hid: np.ndarray) -> np.ndarray:
        """The rows' restored slot values (``A`` of the module docstring) where
        ``fill`` (``[R]``) keeps the reset value of a register the stream
        lacks, for a VMM that saves feature registers or not; services of
        ``hid`` registers keep their fill value."""
        def build():
            la = self.la
            F = np.where(fill[:, None], la.on, np.uint64(0))[None]      # [1, R, nw]
            if saves_features:
                LA, LANY, V = self.LA, self.LANY, self.V
                A = (LA & V) | (~LANY & F) | (LANY & ~LA & V & F)
                if hid.any():
                    A = (A & ~hid) | (F & hid)
            else:
                A = np.broadcast_to(F, self.V.shape)
            return self._rows(A)
        return self.memo(("A", fill.tobytes(), saves_features, hid.tobytes()), build)

    def U(self, unsupported_from: int) -> np.ndarray:
        return self.memo(("U", unsupported_from),
                         lambda: self._rows(self.rel >= unsupported_from))

    def T_list(self) -> np.ndarray:
        """A whole-list writer's threshold: the firmware values' only."""
        def build():
            la = self.la
            if la.fw_threshold is None:
                return _frozen(np.full(self.C * self.R, _NONE, np.int64))
            return self._rows(la.fw_threshold[la.fw_epoch[self.rel]])
        return self.memo("T_list", build)

    def top(self, members: np.ndarray, saves_features: bool) -> np.ndarray:
        """``[C * R, G]``: per strict group (``members`` ``[G, K]``), the newest
        service with a set bit in its registers, listed at the row's release."""
        def build():
            la, rel = self.la, self.rel
            G = len(la.strict_lf)
            top = np.full((self.C, self.R, G), _NONE, np.int64)
            if G and saves_features and la.K:
                for g in range(G):
                    listed = (la.strict_lf[g] <= rel)[None, :, None]
                    hit = self.bits & members[g] & listed
                    top[..., g] = np.where(hit, la.intro, _NONE).max(-1)
            return self._rows(top)
        return self.memo(("top", members.tobytes(), saves_features), build)

    def T_threshold(self, saves_features: bool, tolerant: bool) -> np.ndarray:
        """A snapshot writer's threshold (and a whole-list writer's without
        list rule): older destinations than it refuse (module docstring)."""
        def build():
            la, rel = self.la, self.rel
            T = _max_at_or_below(np.unique(la.fw_intro), rel)
            if la.fw_threshold is not None:
                T = np.maximum(T, la.fw_threshold[la.fw_epoch[rel]])
            T = np.broadcast_to(T, (self.C, self.R)).copy()
            if saves_features:
                if tolerant:
                    for L, members in zip(la.group_lf, la.group_members):
                        hit = ((self.V & members) != 0).any(-1) & (L <= rel)[None]
                        np.maximum(T, np.where(hit, L, _NONE), out=T)
                else:
                    np.maximum(T, _max_at_or_below(la.reg_lf_sorted, rel)[None], out=T)
                if la.any_strict:
                    SL = la.strict_listed[rel][None]
                    bits = unpack(self.V & SL, la.K)                # [C, R, K]
                    top = np.where(bits, la.intro, _NONE).max(-1) if la.K else _NONE
                    np.maximum(T, top, out=T)
            return self._rows(T)
        return self.memo(("T", saves_features, tolerant), build)


def _max_at_or_below(values: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Largest of sorted ``values`` that is <= each ``rel`` (``_NONE`` if none)."""
    if len(values) == 0:
        return np.full(len(rel), _NONE, np.int64)
    k = np.searchsorted(values, rel, side="right")
    return np.where(k > 0, values[np.maximum(k - 1, 0)], _NONE)


def _layout_arrays(strategy: Strategy, history: History) -> _LayoutArrays:
    """The arrays of ``strategy``'s layout on ``history``.  Strategies whose
    layouts are equal share them (``upstream`` and ``invalidate-on-write``
    lay the registers out alike): their models differ by the strategy's
    invalidation alone, which :func:`model` keys them by."""
    layout = strategy.layout(history)
    hit = layout.memo.get("engine")
    if hit is None:
        key = ("layout arrays", strategy.width, *(a.tobytes() for a in layout.columns),
               layout.bits)
        # kept with the layout's history: a strategy may lay out a history of
        # its own (``overflow=opt-in`` resets some services to off)
        memo = layout.history.memo
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = _LayoutArrays(layout, strategy.width)
        layout.memo["engine"] = hit
    return hit


def forget(history: History, strategies: Sequence[Strategy] = ()) -> None:
    """Drop what the engine keeps of ``history`` (its arrays, layouts' arrays
    and models) and ``strategies``' layouts of it.

    They refer to each other (a model to its layout's arrays, which keep
    their models), so without this only the cyclic garbage collector frees
    them, histories later; a sweep calls it after each history so that its
    memory is reused at once."""
    layouts = [strategy.forget(history) for strategy in strategies]
    memos = {id(h.memo): h.memo for h in
             (history, *(layout.history for layout in layouts if layout is not None))}
    for memo in memos.values():
        for value in memo.values():
            if isinstance(value, _LayoutArrays):
                value.forget()
        memo.clear()


# -- scratch memory ----------------------------------------------------------------------

#: Scratch buffers up to this size survive :func:`_release`: a chunk's
#: (about 1.2 MiB at the default chunk size), so that call after call reuses
#: memory already mapped (fresh arrays cost page faults, which dominated
#: small histories).
_KEEP_BYTES = 4 << 20
_SCRATCH = threading.local()


def _work(slot: int, shape: tuple[int, int], dtype) -> np.ndarray:
    """A scratch array reused from chunk to chunk and call to call (per thread).

    Only temporaries live here (the kernel's in slots 0-3, a stacked
    count's in 4-8); what :meth:`Model.pairs` returns is only valid until
    its next call.
    """
    pool = getattr(_SCRATCH, "pool", None)
    if pool is None:
        pool = _SCRATCH.pool = {}
    size = shape[0] * shape[1]
    buf = pool.get(slot)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = pool[slot] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def _release() -> None:
    """Free the scratch buffers larger than :data:`_KEEP_BYTES`."""
    pool = getattr(_SCRATCH, "pool", {})
    for slot in [k for k, buf in pool.items() if buf.nbytes > _KEEP_BYTES]:
        del pool[slot]


# -- one strategy under one VMM ---------------------------------------------------------

#: ``qemu-tolerant`` source rows are merged by their drops (:meth:`Model._tolerant_keys`)
#: only from this many rows: a release-compressed count has an epoch per
#: source, and sorting their keys cost more than the codes of every row.
_TOLERANT_DISTINCT_FROM = 256


@dataclass
class _Side:
    """Per-row arrays of sources or destinations."""

    rel: np.ndarray        # release index of each row
    words: tuple           # sources: (A, B); destinations: (D1, D2)
    T: np.ndarray | None   # sources: refusal threshold (destination older -> refused)
    fwe: np.ndarray        # firmware epoch
    U: np.ndarray          # unsupported on this side
    le: np.ndarray | None = None     # list epoch (the whole-list rule)
    top: np.ndarray | None = None    # sources: [rows, G] newest set service per strict group
    lrows: np.ndarray | None = None  # sources: the list-code rows ``le`` indexes (else the model's)
    slf: np.ndarray | None = None    # sources: [rows, G] release listing each strict group
                                     # (rows of several layouts; else the layout's strict_lf)

    def take(self, rows: np.ndarray) -> _Side:
        """The rows ``rows`` of this side."""
        return _Side(self.rel[rows], tuple(w[rows] for w in self.words),
                     None if self.T is None else self.T[rows], self.fwe[rows], self.U[rows],
                     None if self.le is None else self.le[rows],
                     None if self.top is None else self.top[rows], self.lrows,
                     None if self.slf is None else self.slf[rows])


class Model:
    """A history, strategy and VMM policy, ready for the kernel.

    Built by :func:`model`; the public functions take the three objects and
    build (and cache per layout) what they need.
    """

    def __init__(self, history: History, strategy: Strategy, vmm: Vmm):
        # No reference to the strategy: models are cached on the layout's
        # arrays, and the strategy holds the layout (a cycle would pin it).
        # None to the policy either: policies that read alike share the model.
        la = self.arrays = _layout_arrays(strategy, history)
        self.n, self.K, self.nw = la.n, la.K, la.nw
        rule = vmm.rule
        method = _overridden(vmm)
        if method:
            raise EngineUnsupported(f"VMM {vmm.name} overrides {method}: no rule to read")
        self.whole_list = rule.write_back == "whole-list"
        if self.whole_list and not rule.count_check:
            raise EngineUnsupported(f"VMM {vmm.name} writes back its whole list "
                                    "without a count check")
        self.tolerant = rule.drop_zero_unknown_features
        self.zero_unknown = rule.zero_absent_features
        # Every register of the layout and every firmware entry, not a sample.
        got = _answers(la, vmm)
        self._reg_hidden = got.hidden
        if got.partial:
            raise EngineUnsupported(f"{vmm.name} saves some feature registers only")
        self.saves_features = got.saves_features
        if not got.fw_all:
            raise EngineUnsupported(f"{vmm.name} does not save every firmware register")
        # Unsupported from the first release listing a register the VMM cannot handle.
        bad = ([*la.reg_lf[~got.regs.handles].tolist(), *la.fw_intro[~got.fw.handles].tolist()]
               if got.unhandled else ())
        self.unsupported_from = min(bad) if bad else _NEVER
        self.inval_feature = strategy.invalidates(feature=True)
        self.inval_fw = strategy.invalidates(feature=False)
        if (self.whole_list and not self.saves_features and len(la.reg_ids)
                and (self.inval_feature or self.inval_fw)):
            # the destination's own writes clear feature registers nothing rewrites
            raise EngineUnsupported(f"{vmm.name} writes back a list without the feature "
                                    "registers under invalidate-on-write")
        self._reg_saves = got.regs.saves
        self.tallies: dict[bytes, tuple] = {}      # tally() per setting
        self._list_rule(history, strategy, vmm)

    def _list_rule(self, history: History, strategy: Strategy, vmm: Vmm) -> None:
        """The whole-list rule (DESIGN.md section 9, :mod:`hcsim.evaluation.lists`).

        Used when the history's other registers are in the model, or the VMM
        hides ids or tolerates missing ones (``qemu-compat``): the list part
        of a restore (QEMU's count check and walk; a snapshot writer's
        ``-ENOENT`` on an other register) comes from tables over list-epoch
        pairs; the value part (firmware values, unknown bits of registers
        the destination lists) from the thresholds as before.  Services of
        hidden feature registers are neither configured nor restored: the
        destination keeps its reset value.
        """
        la, rule = self.arrays, vmm.rule
        hidden, safe = rule.hidden, rule.tolerated
        self.hid = np.zeros(self.nw, np.uint64)
        self.lcode = None
        self.strict_members = la.strict_members
        if not (history.whole or hidden or safe):
            return
        if hidden and hidden & set(la.fw_ids.tolist()):
            raise EngineUnsupported(f"{vmm.name} hides a firmware register")
        # shared by the strategies and VMMs of the history (its other-register
        # data), else by the VMMs of this layout
        cache = history.other._tables if history.other is not None else la.lists
        # the hypercall ids saved per release (every firmware register is
        # saved, none hidden: checked above)
        kept = self._reg_saves & ~self._reg_hidden
        # keyed by the listing events, not the lists (hashing those costs more);
        # the key asked once per layout and saved registers
        ekey = ("events", kept.tobytes())
        hit = la.models.get(ekey)
        if hit is None:
            events = (np.concatenate([la.fw_intro, la.reg_lf[kept]]),
                      np.concatenate([la.fw_ids, la.reg_ids[kept]]))
            hit = la.models[ekey] = (("hyp", self.n, events[0].tobytes(), events[1].tobytes()),
                                     events)
        hkey, events = hit
        hyp = cache.get(hkey)
        if hyp is None:
            hyp = cache[hkey] = lists.listed_by_release(self.n, *events)
        saved = lists.saved_other(history, vmm)
        if not _handles_other(history, vmm, saved):
            raise EngineUnsupported(f"an other register of a width {vmm.name} cannot handle")
        if self._reg_hidden.any():
            if self.inval_feature or self.inval_fw:
                # invalidate-on-write clears a hidden register that nothing rewrites
                raise EngineUnsupported("a hidden feature register under invalidate-on-write")
            # per service: how many of its slots are in hidden registers, of how many
            hidden_slots = np.bincount(la.slot_owner, self._reg_hidden[la.slot_reg], self.K)
            slots = np.bincount(la.slot_owner, minlength=self.K)
            if ((hidden_slots > 0) & (hidden_slots < slots)).any():
                raise EngineUnsupported("a service spans hidden and saved registers")
            hid = (slots > 0) & (hidden_slots == slots)
            self.hid = pack(hid, self.nw)
            self.strict_members = la.strict_members & ~hid[None, :]
        if len(hyp.ids) and len(saved.lists.ids) and saved.lists.ids[-1] > hyp.ids[0]:
            raise EngineUnsupported("an other register sorts after a hypercall register")
        drops = safe if self.whole_list else frozenset()
        # each part's safe-missing ids among its own (x-mig-safe-missing-regs
        # names other registers: the hypercall part is qemu's)
        eff = ([frozenset(i for i in drops if _has(rows.ids, i)) for rows in (hyp, saved.lists)]
               if drops else [drops, drops])
        tkey = ("rule", hkey, saved.token, *eff)
        tab = cache.get(tkey)           # shared by the strategies and VMMs that save alike
        if tab is None:
            # the parts' own tables: the other part's shared by the layouts
            parts = []
            for pkey, rows, ids in zip((hkey, saved.token), (hyp, saved.lists), eff):
                got = cache.get(("part", pkey, ids))
                if got is None:
                    got = cache["part", pkey, ids] = lists.part(rows, ids)
                parts.append(got)
            tab = cache[tkey] = lists.tables(hyp, saved.lists, parts=tuple(parts))
        self.le = tab.epoch
        self.tab = tab
        if self.tolerant:
            # qemu-tolerant: a zero-valued feature register the destination lacks is
            # dropped too; a source row's drops depend on its values, so its table
            # row is computed per (list epoch, zero registers) key (_tolerant_keys)
            uni = tab.hyp.ids
            at = np.minimum(np.searchsorted(uni, la.reg_ids), max(len(uni) - 1, 0))
            inside = (uni[at] == la.reg_ids) if len(uni) else np.zeros(len(at), bool)
            regs_saved = np.flatnonzero(inside & ~self._reg_hidden)
            # registers listed together with the same services are zero together:
            # each register holding a slot is its own group, the others (most of
            # full-bitmap's 2048) one group per listing release
            holds = np.zeros(len(la.reg_ids), bool)
            holds[la.slot_reg] = True
            full, empty = regs_saved[holds[regs_saved]], regs_saved[~holds[regs_saved]]
            empty_lf, empty_group = np.unique(la.reg_lf[empty], return_inverse=True)
            self.tol_lf = np.concatenate([la.reg_lf[full], empty_lf])              # [G]
            self.tol_members = np.concatenate([pack(la.services_of(full), self.nw),
                                               np.zeros((len(empty_lf), self.nw), np.uint64)])
            masks = np.zeros((len(self.tol_lf), max(len(uni), 1)), bool)
            masks[np.arange(len(full)), at[full]] = True
            masks[len(full) + empty_group.reshape(-1), at[empty]] = True
            self.tol_masks = lists._pack(masks)                                 # [G, hyp words]
        # A snapshot writer meets the other registers first (they sort first):
        # one the destination lacks fails the restore, blaming it and every
        # later register the destination lacks (``missing``).
        if self.whole_list:
            self.lcode = tab.qemu
        else:
            self.lcode = cache.get(("snapshot", tkey))
            if self.lcode is None:
                self.lcode = cache["snapshot", tkey] = _frozen(np.where(
                    tab.missing & np.int8(lists.OTHER), tab.missing, np.int8(0)).astype(np.int8))

    def release(self) -> None:
        """Free the large scratch buffers (:func:`_work`)."""
        _release()

    # -- per-release quantities ----------------------------------------------------
    def sources(self, rel: np.ndarray, setting: np.ndarray) -> _Side:
        """Rows for every (configuration, source release).

        ``setting`` is ``[2, C, nw]``: the services each configuration turns
        off, and the ones it turns on (:meth:`settings`).  Under a
        whole-list writer's list rule ``T`` holds only the firmware-value
        threshold and ``top[:, g]`` the newest service with a set bit in the
        strict registers listed from ``strict_lf[g]`` (writing such a
        register fails on a destination that lists it, ``L <= d``, but
        predates the service, ``d < top``).  The rows' arrays are shared
        with the layout's other VMMs (read-only).
        """
        la = self.arrays
        off, on = setting
        if not self.saves_features:                             # crosvm cannot configure
            off, on = np.zeros_like(off), np.zeros_like(on)
        elif self.hid.any():                                    # hidden registers: not written
            off, on = off & ~self.hid, on & ~self.hid
        cfg = la.configured(rel, off, on)
        if self.whole_list:
            fill = np.full(len(rel), not self.zero_unknown)
        else:
            feat_listed = rel >= (la.reg_lf_sorted[0] if len(la.reg_lf_sorted) else _NEVER)
            fw_listed = rel >= (la.fw_intro.min() if len(la.fw_intro) else _NEVER)
            fill = ~((self.inval_feature & self.saves_features & feat_listed)
                     | (self.inval_fw & fw_listed))
        A = cfg.A(fill, self.saves_features, self.hid)
        rows, fwe, B = cfg.rows
        U = cfg.U(self.unsupported_from)
        le = None if self.lcode is None else np.tile(self.le[rel], off.shape[0])
        if self.lcode is not None and self.whole_list:
            lrows = None
            if self.tolerant:
                le, lrows = self._tolerant_keys(rel, cfg.V, le)
            return _Side(rows, (A, B), cfg.T_list(), fwe, U, le,
                         cfg.top(self.strict_members, self.saves_features), lrows)
        return _Side(rows, (A, B), cfg.T_threshold(self.saves_features, self.tolerant), fwe, U, le)

    def _tolerant_keys(self, rel: np.ndarray, V: np.ndarray, e_rows: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``qemu-tolerant`` sources: QEMU's list codes against every destination
        list epoch, one row per distinct (list epoch ``e_rows``, zero-valued
        feature registers) of the rows (their drops), and each row's index
        into them."""
        C, R = V.shape[0], len(rel)
        tab = self.tab
        nonzero = (V[:, :, None, :] & self.tol_members).any(-1)             # [C, R, G]
        listed = self.tol_lf[None, None, :] <= rel[None, :, None]
        zero = listed & ~nonzero if self.saves_features else np.zeros_like(nonzero)
        zero = zero.reshape(C * R, -1)
        if C * R <= _TOLERANT_DISTINCT_FROM:
            # a few rows (an epoch per source): each its own, no sort of keys
            first = inverse = np.arange(C * R)
        else:
            rows = np.concatenate([e_rows[:, None].view(np.uint8), np.packbits(zero, axis=1)],
                                  axis=1)
            rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()
            _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        drop = np.bitwise_or.reduce(np.where(zero[first][..., None], self.tol_masks,
                                             np.uint64(0)), axis=1)
        codes = lists.qemu_codes(tab, e_rows[first], drop)
        return inverse.reshape(-1), codes

    def destinations(self, rel: np.ndarray) -> _Side:
        la = self.arrays
        sup = la.sup[rel]
        LA = la.listed_all[rel]
        pre = (rel < la.rf)[:, None]
        D1 = np.where(pre, sup, sup & ~la.cov)
        D2 = np.where(pre, np.uint64(0), sup & LA)
        return _Side(rel, (D1, D2), None, la.fw_epoch[rel], rel >= self.unsupported_from,
                     None if self.lcode is None else self.le[rel])

    # -- the kernel: every source row against every destination ---------------------
    def pairs(self, src: _Side, dst: _Side, sets: bool = False, blame: bool = False
              ) -> tuple:
        """Outcome codes ``[rows, dsts]`` (int8), and packed gained/lost if ``sets``
        (:func:`_kernel`).

        With ``blame``, a fourth array: the blame code of every refused pair
        (:data:`hcsim.evaluation.outcomes.BLAMES`; 0 elsewhere).
        The codes live in scratch memory: use them before the next call.
        """
        listed = (None if self.lcode is None
                  else self._listed(src, dst.le, codes=blame, dense=len(dst.rel) == self.n))
        return _kernel(self.arrays, src, dst, listed, sets, blame)

    def _listed(self, src: _Side, dst_le: np.ndarray, codes: bool = True, dense: bool = False
                ) -> np.ndarray:
        """The list rule's blame code of every (source row, destination) pair,
        destinations of list epochs ``dst_le`` (``codes=False``: whether it
        refuses).

        Against every release (``dense``: the dense kernel), rows of a
        ``[rows, n]`` table expanded once per model (row copies); else a gather."""
        if src.lrows is not None:       # the sources' own rows (qemu-tolerant)
            got = np.take(src.lrows[src.le], dst_le, axis=1)
            return got if codes else got != 0
        if dense and self.n > 64:
            full = getattr(self, "_lfull", None)
            if full is None or full[0].shape[0] != len(self.lcode):
                table = np.ascontiguousarray(self.lcode[:, self.le])
                full = self._lfull = (table, table != 0)
            return full[0 if codes else 1][src.le]
        got = np.take(self.lcode[src.le], dst_le, axis=1)
        return got if codes else got != 0

    def settings(self, configs: Sequence[Config | Setting]) -> np.ndarray:
        """``[2, C, nw]`` words: services each configuration turns off, and on.

        A configuration is a set of service names to turn off, or a
        :class:`~hcsim.model.config.Setting` without firmware values; names the
        history does not have are ignored, as the spec ignores them.
        """
        la = self.arrays
        bits = np.zeros((2, len(configs), self.K), bool)
        for c, cfg in enumerate(configs):
            if isinstance(cfg, Setting):
                if cfg.firmware:
                    raise EngineUnsupported("configurations with firmware values")
                parts = (cfg.off, cfg.on)
            else:
                parts = (cfg, ())
            for side, names in enumerate(parts):
                for name in names:
                    k = la.index.get(name)
                    if k is not None:
                        bits[side, c, k] = True
        return pack(bits, self.nw)

    def row_chunks(self, setting: np.ndarray, chunk_pairs: int
                   ) -> Iterator[tuple[np.ndarray, _Side]]:
        """Every source release in chunks of about ``chunk_pairs`` pairs (all configs).

        Yields (source releases, their rows for every configuration).  The
        rows of all sources are computed once, block by block (memory
        ``O(C n)``, bounded temporaries), then taken chunk by chunk.
        """
        C, n = setting.shape[1], self.n
        block = max(1, chunk_pairs // max(1, C * 64 * self.nw))
        parts = [self.sources(np.arange(a, min(n, a + block)), setting)
                 for a in range(0, n, block)]
        if len(parts) == 1:
            rows = parts[0]
        else:
            def cat(get):
                return np.concatenate([get(p).reshape(C, len(p.rel) // C, *get(p).shape[1:])
                                       for p in parts], axis=1).reshape(C * n, *get(parts[0]).shape[1:])
            lrows = None
            if parts[0].lrows is not None:  # each block's own list-code rows: renumbered
                base = np.cumsum([0] + [len(p.lrows) for p in parts[:-1]])
                parts = [replace(p, le=p.le + b) for p, b in zip(parts, base)]
                lrows = np.concatenate([p.lrows for p in parts])
            rows = _Side(cat(lambda p: p.rel), (cat(lambda p: p.words[0]), cat(lambda p: p.words[1])),
                         cat(lambda p: p.T), cat(lambda p: p.fwe), cat(lambda p: p.U),
                         None if parts[0].le is None else cat(lambda p: p.le),
                         None if parts[0].top is None else cat(lambda p: p.top), lrows)
        # At most a quarter of the sources per chunk: the square block of a
        # chunk's own releases is the costly part of counting (see counts).
        per = max(1, min(chunk_pairs // max(1, n * C), max(16, n // 4)))
        configs = np.arange(C)[:, None] * n
        for start in range(0, n, per):
            rel = np.arange(start, min(n, start + per))
            yield rel, rows.take((configs + rel[None, :]).ravel())


def _kernel(la: _LayoutArrays, src: _Side, dst: _Side, listed: np.ndarray | None,
            sets: bool = False, blame: bool = False) -> tuple:
    """Outcome codes ``[rows, dsts]`` (int8) of source rows ``src`` against
    destinations ``dst`` of one layout, and packed gained/lost if ``sets``.

    ``listed``: the list rule's code of every pair (``[rows, dsts]``; blame
    codes with ``blame``, else refusals), or None when the model has no list
    rule.  ``dst.U`` is ``[dsts]``, or ``[rows, dsts]`` when the rows come
    from several policies (:func:`tallies`); the destination words
    ``[dsts, nw]``, or ``[rows, dsts, nw]`` when they come from several
    layouts of the history (then ``src.slf`` holds each row's strict groups;
    ``la`` is any of them: the firmware tables are the history's).
    """
    A, B = src.words
    D1, D2 = dst.words
    if D1.ndim == 2:
        D1, D2 = D1[None], D2[None]
    shape = (len(src.rel), len(dst.rel))
    if la.nw == 1:
        after = np.bitwise_and(A[:, :1], D2[..., 0], out=_work(0, shape, np.uint64))
        after |= D1[..., 0]
        Bc = B[:, :1]
        t = np.bitwise_or(after, Bc, out=_work(1, shape, np.uint64))
        code = np.not_equal(t, Bc, out=_work(2, shape, bool)).view(np.int8)
        np.bitwise_and(after, Bc, out=t)
        lost = np.not_equal(t, Bc, out=_work(3, shape, bool)).view(np.int8)
    else:
        after = np.bitwise_and(A[:, None, :], D2)
        after |= D1
        Bc = B[:, None, :]
        code = ((after | Bc) != Bc).any(-1).view(np.int8)
        lost = ((after & Bc) != Bc).any(-1).view(np.int8)
    code += lost
    code += lost
    refused = np.less(dst.rel[None, :], src.T[:, None], out=_work(3, shape, bool))
    if la.fw_threshold is None:
        refused |= la.fw_bad[:, dst.fwe][src.fwe]
    if src.top is not None:             # unknown bits of registers both list
        d = dst.rel[None, :]
        slf = la.strict_lf[None] if src.slf is None else src.slf
        for g in range(src.top.shape[1]):
            refused |= (slf[:, g][:, None] <= d) & (d < src.top[:, g][:, None])
    blames = None
    if blame:
        blames = np.where(refused, np.int8(1), np.int8(0))          # hypercall
        if listed is not None:      # the list checks (or other registers) come first
            blames = np.where(listed != 0, listed, blames)
            listed = listed != 0
    if listed is not None:
        refused |= listed
    np.putmask(code, refused, np.int8(REFUSED))
    if src.U.any():
        code[src.U] = UNSUPPORTED
    if dst.U.ndim == 2:
        np.putmask(code, dst.U, np.int8(UNSUPPORTED))
    elif dst.U.any():
        code[:, dst.U] = UNSUPPORTED
    if blames is not None:
        blames[code != REFUSED] = 0
    if not sets:
        return (code, None, None, blames) if blame else (code, None, None)
    if la.nw == 1:
        after = after[..., None]
        Bc = Bc[..., None]
    gained = after & ~Bc
    lost_w = Bc & ~after
    loud = code >= REFUSED
    gained[loud] = 0
    lost_w[loud] = 0
    return (code, gained, lost_w, blames) if blame else (code, gained, lost_w)


def model(history: History, strategy: Strategy, vmm: Vmm) -> Model:
    """The engine's view of one history, strategy and VMM policy (cached per layout).

    :class:`EngineUnsupported` if the engine does not model them.
    """
    la = _layout_arrays(strategy, history)
    # the layout's arrays may be another strategy's too (_layout_arrays)
    inval = (strategy.invalidates(feature=True), strategy.invalidates(feature=False))
    key = (vmm.key, inval)
    hit = la.models.get(key)
    if hit is None:
        same = (_behaviour(la, history, vmm), inval)
        hit = la.models.get(same)
        if hit is None:
            hit = la.models[same] = Model(history, strategy, vmm)
        la.models[key] = hit
    return hit


class _LayoutAnswers(NamedTuple):
    """What a policy answers about a layout's feature and firmware registers
    (:func:`~hcsim.model.vmm.facts`), and what a :class:`Model` reads of it."""

    regs: Facts
    fw: Facts
    behaviour: tuple           # the answers as bytes (:func:`_behaviour`)
    hidden: np.ndarray         # feature registers it hides (x-mig-hidden-regs)
    partial: bool              # saves some feature registers only
    saves_features: bool
    fw_all: bool               # saves every firmware register
    unhandled: bool            # some register of a width it cannot handle


def _answers(la: _LayoutArrays, vmm: Vmm) -> _LayoutAnswers:
    """:class:`_LayoutAnswers` of ``vmm`` about the layout's registers (asked once per
    layout and policy; the same registers recur from history to history,
    so kept by their ids too)."""
    key = ("answers", vmm.key)
    hit = la.models.get(key)
    if hit is None:
        gkey = (vmm.key, la.reg_ids.tobytes(), la.fw_ids.tobytes())
        hit = _ANSWERS.get(gkey)
        if hit is None:
            rule = vmm.rule
            # shared from history to history: read-only
            regs, fw = (Facts(*map(_frozen, facts(vmm, ids))) for ids in (la.reg_ids, la.fw_ids))
            hidden = _frozen(np.isin(la.reg_ids, np.array(sorted(rule.hidden), np.uint64))
                             if rule.hidden else np.zeros(len(la.reg_ids), bool))
            kept = regs.saves | hidden
            if len(_ANSWERS) >= 4096:
                _ANSWERS.clear()
            hit = _ANSWERS[gkey] = _LayoutAnswers(
                regs, fw, tuple(a.tobytes() for a in (regs.saves, regs.handles, fw.saves,
                                                      fw.handles)),
                hidden, bool(0 < regs.saves.sum() < len(kept) and kept.sum() < len(kept)),
                bool(kept.all() and regs.saves.any()), bool(fw.saves.all()),
                not (regs.handles.all() and fw.handles.all()))
        la.models[key] = hit
    return hit


#: :class:`_LayoutAnswers` by policy key and the layout's feature and firmware ids.
_ANSWERS: dict[tuple, _LayoutAnswers] = {}


def _handles_other(history: History, vmm: Vmm, saved: lists.SavedOther) -> bool:
    """Can ``vmm`` handle every other register it saves (asked once per history)?"""
    if saved.token is None:
        return True
    cache = history.other._tables
    key = ("handled", saved.token, vmm.key)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = bool(facts(vmm, saved.lists.ids).handles.all())
    return hit


def _overridden(vmm: Vmm) -> str:
    """The first of ``save``, ``restore`` and ``configure`` that ``vmm``'s class
    overrides (the engine then has no rule to read), or ``""`` (per class)."""
    cls = type(vmm)
    hit = _OVERRIDES.get(cls)
    if hit is None:
        hit = _OVERRIDES[cls] = next((m for m in ("save", "restore", "configure")
                                      if getattr(cls, m) is not getattr(Vmm, m)), "")
    return hit


_OVERRIDES: dict[type, str] = {}      # policy classes are few and live on


def _behaviour(la: _LayoutArrays, history: History, vmm: Vmm) -> tuple:
    """Everything a :class:`Model` reads of ``vmm``: its restore rule and its
    answers about every register of the layout and the history.  Policies
    that agree on all of it (Firecracker and Cloud Hypervisor, while every
    register is one both can handle) share one model."""
    if _overridden(vmm):
        return ("own", vmm.key)
    got = _answers(la, vmm)
    # what it reads of the history alone, asked once per history and policy
    hkey = ("behaviour", vmm.key)
    part = history.memo.get(hkey)
    if part is None:
        other = lists.saved_other(history, vmm)
        part = history.memo[hkey] = (other.token, _handles_other(history, vmm, other))
    rule = vmm.rule
    if rule.hidden or rule.tolerated:
        # ids the history never lists change nothing (x-mig-hidden-regs and
        # x-mig-safe-missing-regs name ids; absent ones are never met)
        ids = (_present(la, history, rule.hidden), _present(la, history, rule.tolerated))
        if ids != (rule.hidden, rule.tolerated):
            rkey = (rule, *ids)
            narrowed = _NARROWED.get(rkey)
            if narrowed is None:
                if len(_NARROWED) >= 256:
                    _NARROWED.clear()
                narrowed = _NARROWED[rkey] = replace(rule, hidden=ids[0], tolerated=ids[1])
            rule = narrowed
    return ("behaviour", rule, *got.behaviour, *part)


#: A policy's rule narrowed to the ids a history lists, by rule and ids.
_NARROWED: dict[tuple, object] = {}


def _present(la: _LayoutArrays, history: History, ids: frozenset[int]) -> frozenset[int]:
    """The ``ids`` some release of ``history`` lists under this layout: among
    its feature registers, its firmware registers and its other registers
    (a policy names a few ids)."""
    if not ids:
        return ids
    known = history.memo.get("listed ids")
    if known is None:       # the history's own: firmware and other registers
        other = lists.listed_other(history)
        known = history.memo["listed ids"] = frozenset(
            [*la.fw_ids.tolist(), *(() if other is None else other.ids.tolist())])
    # only a class 0x16 id can be one of the layout's feature registers
    return frozenset(i for i in ids if i in known or (
        (i >> 16) & 0xFFF == KVM_REG_ARM_FW_FEAT_BMAP and _has(la.reg_ids, i)))


def _has(sorted_ids: np.ndarray, rid: int) -> bool:
    k = int(np.searchsorted(sorted_ids, np.uint64(rid)))
    return k < len(sorted_ids) and int(sorted_ids[k]) == rid


def supports(history: History, strategy: Strategy, vmm: Vmm,
             configs: Sequence[Config | Setting] | None = None,
             vcpus: int = 1) -> tuple[bool, str]:
    """Does the engine model this evaluation?  ``(True, "")`` or ``(False, reason)``.

    Reads the VMM's :class:`~hcsim.model.vmm.RestoreRule` and asks its
    ``saves`` and ``handles`` of every register of the layout and every
    firmware entry of the history.
    """
    try:
        _check_vcpus(vcpus)
        model(history, strategy, vmm).settings(_configs(configs))
    except EngineUnsupported as exc:
        return False, str(exc)
    return True, ""


def fresh(history: History, strategy: Strategy, release: int) -> tuple[np.ndarray, int]:
    """A new VM at ``release`` as the engine's arrays hold it: the ids its
    vCPU lists (``KVM_GET_REG_LIST`` without CORE and SVE: the firmware and
    feature registers listed by then, and in the ``all`` view the other
    registers of the history's host and vCPU features; sorted ``uint64``,
    read-only) and how many services its guest sees (``B`` of the module
    docstring with nothing turned off or on).

    What :func:`hcsim.evaluation.measures.fresh` gets by booting the spec's
    kernel, without the boot (a sweep asks once per history and strategy);
    ``tests/test_sweep_scorecard.py`` checks that the two agree.
    :class:`EngineUnsupported` if the engine does not model the layout.
    """
    la = _layout_arrays(strategy, history)
    key = ("fresh", release)
    hit = la.models.get(key)
    if hit is None:
        parts = [la.fw_ids[la.fw_intro <= release], la.reg_ids[la.reg_lf <= release]]
        other = lists.listed_other(history)
        if other is not None:
            parts.append(other.ids[other.member[other.epoch[release]]])
        sup = la.sup[release]
        seen = sup if release < la.rf else sup & (~la.cov | (la.listed_all[release] & la.on))
        hit = la.models[key] = (_frozen(np.sort(np.concatenate(parts))),
                                int(np.bitwise_count(seen).sum()))
    return hit


def _check_vcpus(vcpus: int) -> None:
    if vcpus != 1:
        raise EngineUnsupported(f"it evaluates one vCPU, not {vcpus}")


def _configs(configs: Sequence[Config | Setting] | None) -> tuple[Config | Setting, ...]:
    return tuple(configs) if configs else (frozenset(),)


def _epoch_of(m: Model) -> tuple[np.ndarray, np.ndarray]:
    """Representative (first) release of each epoch and each release's epoch."""
    starts = m.arrays.starts
    return starts, np.searchsorted(starts, np.arange(m.n), side="right") - 1


def evaluate(history: History, strategy: Strategy, vmm: Vmm,
             configs: Sequence[Config | Setting] | None = None, *,
             chunk_pairs: int = DEFAULT_CHUNK_PAIRS, compress: bool = True,
             sets: bool = True, vcpus: int = 1) -> Outcomes:
    """Outcome, gained and lost set of every (configuration, source, destination).

    ``sets=False`` leaves the gained and lost sets out (None): the codes
    are all a measure needs.

    Memory: the result holds ``C * n * n * (1 + 16 * nw)`` bytes; use
    :func:`counts` for histories too large to hold.  :class:`EngineUnsupported`
    if the engine does not model the evaluation (:func:`supports`), raised
    before anything is computed.

    Examples
    --------
    >>> from hcsim import load, parse_strategy, parse_vmm
    >>> r = evaluate(load("linux"), parse_strategy("upstream"), parse_vmm("qemu"))
    >>> r.codes.shape
    (1, 49, 49)
    """
    _check_vcpus(vcpus)
    cfgs = _configs(configs)
    m = model(history, strategy, vmm)
    try:
        code, gained, lost, blames = _evaluate(m, cfgs, chunk_pairs, compress, sets)
    finally:
        m.release()
    return Outcomes(history, strategy, vmm, cfgs, code, gained, lost, "engine",
                    blames=blames)


def _evaluate(m: Model, cfgs: tuple, chunk_pairs: int, compress: bool, sets: bool = True
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    off = m.settings(cfgs)
    C, n, nw = len(cfgs), m.n, m.nw
    if compress:
        starts, ep = _epoch_of(m)
        src = m.sources(starts, off)
        code, g, lo, bl = m.pairs(src, m.destinations(starts), sets=sets, blame=True)
        E = len(starts)
        ix = (slice(None), ep[:, None], ep[None, :])
        code = code.reshape(C, E, E)[ix]
        bl = bl.reshape(C, E, E)[ix]
        if not sets:
            return code, None, None, bl
        g, lo = (x.reshape(C, E, E, nw)[ix] for x in (g, lo))
        return code, g, lo, bl
    outcome = np.empty((C, n, n), np.int8)
    gained = np.empty((C, n, n, nw), np.uint64)
    lost = np.empty((C, n, n, nw), np.uint64)
    blames = np.empty((C, n, n), np.int8)
    dst = m.destinations(np.arange(n))
    for rel, src in m.row_chunks(off, chunk_pairs):
        code, g, lo, bl = m.pairs(src, dst, sets=True, blame=True)
        rows = slice(int(rel[0]), int(rel[-1]) + 1)
        outcome[:, rows] = code.reshape(C, len(rel), n)
        gained[:, rows] = g.reshape(C, len(rel), n, nw)
        lost[:, rows] = lo.reshape(C, len(rel), n, nw)
        blames[:, rows] = bl.reshape(C, len(rel), n)
    return outcome, gained, lost, blames


def counts(history: History, strategy: Strategy, vmm: Vmm,
           configs: Sequence[Config | Setting] | None = None, *,
           chunk_pairs: int = DEFAULT_CHUNK_PAIRS, compress: bool = True) -> np.ndarray:
    """Outcome counts ``[2, 6]`` (forward, backward) over every configuration.

    A streaming reduction of what :func:`hcsim.evaluation.measures.counts`
    computes on an :class:`~hcsim.evaluation.outcomes.Outcomes`: it never
    holds more than one chunk of pairs (the dense kernel ``hcsim bench`` times).

    Examples
    --------
    >>> from hcsim import load, parse_strategy, parse_vmm
    >>> c = counts(load("linux"), parse_strategy("upstream"), parse_vmm("qemu"))
    >>> int(c.sum()) == 49 * 48
    True
    """
    m = model(history, strategy, vmm)
    try:
        return _count(m, _configs(configs), chunk_pairs, compress)
    finally:
        m.release()


def _count(m: Model, cfgs: tuple, chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
           compress: bool = True) -> np.ndarray:
    off = m.settings(cfgs)
    C, n = len(cfgs), m.n
    out = np.zeros((3, len(OUTCOMES)), np.int64)       # backward, diagonal, forward
    if compress:
        starts, weights = _epoch_weights(m)
        code, _, _ = m.pairs(m.sources(starts, off), m.destinations(starts))
        return _epoch_counts(code, weights, len(OUTCOMES))
    dst = m.destinations(np.arange(n))
    if C * n * n <= _SMALL_CHUNKS * chunk_pairs:
        # Small: one chunk (per-chunk calls would dominate), each pair's code
        # shifted by its direction, so one pass per (code, direction) counts it.
        code, _, _ = m.pairs(m.sources(np.arange(n), off), dst)
        coded = np.add(code.reshape(C, n, n), _direction(n))
        k = len(OUTCOMES)
        both = np.array([np.count_nonzero(coded == o) for o in range(2 * k - 1)], np.int64)
        both = np.append(both, coded.size - both.sum()).reshape(2, k)   # [backward+diag, forward]
        diag = _tally(np.diagonal(code.reshape(C, n, n), axis1=1, axis2=2))
        return np.stack([both[1], both[0] - diag])
    for rel, src in m.row_chunks(off, chunk_pairs):
        code, _, _ = m.pairs(src, dst)
        # Sources s0..s1-1: destinations before s0 are all backward, from s1
        # on all forward; only the square block between needs a mask.
        s0, s1 = int(rel[0]), int(rel[-1]) + 1
        out[0] += _tally(code[:, :s0])
        out[2] += _tally(code[:, s1:])
        block = code[:, s0:s1].reshape(C, s1 - s0, s1 - s0)
        forward = _tally((block + np.int8(1)) * _direction(s1 - s0, 1), 1)  # 0: the other half
        out[2] += forward
        out[0] += _tally(block) - forward - _tally(np.diagonal(block, axis1=1, axis2=2))
    return out[[2, 0]]


def _epoch_weights(m: Model) -> tuple[np.ndarray, tuple]:
    """The epochs' first releases, and how to count their pairs: per epoch
    pair (flat, ``E * E``) the release pairs it stands for and whether they
    are backward (1; their bins shifted, :func:`_epoch_counts`), and the
    diagonal's backward half (its index and weights).

    Epoch pair (i, j) stands for size[i] * size[j] release pairs, all
    forward when i < j and all backward when i > j; inside one epoch,
    size * (size - 1) / 2 each way.
    """
    la = m.arrays
    w = la.epoch_weights            # one per layout: its VMMs share the epochs
    if w is None:
        # and layouts of the history with the same epochs share them
        memo = la.history.memo
        key = ("weights", la.starts.tobytes())
        w = memo.get(key)
        if w is None:
            E = len(la.starts)
            size = np.diff(np.append(la.starts, m.n)).astype(np.float64)
            weight = np.outer(size, size)
            inside = size * (size - 1) / 2
            weight[np.diag_indices(E)] = inside
            backward = np.tril(np.ones((E, E), np.int64), -1).ravel()
            diag = np.arange(E) * (E + 1)
            w = memo[key] = (weight.ravel(), backward, diag, inside)
            for a in w:
                a.flags.writeable = False
        la.epoch_weights = w
    return la.starts, w


def _epoch_counts(bins: np.ndarray, weights: tuple, size: int) -> np.ndarray:
    """``[2, size]``: how many release pairs, forward then backward, fall in
    each bin of ``bins`` (``[C * E, E]`` over epoch pairs, ``weights`` from
    :func:`_epoch_weights`): one weighted count, backward bins shifted by
    ``size``, each epoch pair counted once and the diagonal's backward half
    once more.  Float64 weights count exactly below 2**53."""
    weight, backward, diag, inside = weights
    C = bins.size // len(weight)
    index = bins.reshape(C, -1)
    both = _work(4, (C, len(weight) + len(diag)), np.int64)
    np.add(index, backward * size, out=both[:, :len(weight)])      # backward bins shifted
    np.add(index[:, diag], np.int64(size), out=both[:, len(weight):])
    w = _work(5, both.shape, np.float64)
    w[:, :len(weight)] = weight
    w[:, len(weight):] = inside
    return np.rint(np.bincount(both.reshape(-1), w.reshape(-1), minlength=2 * size)
                   ).astype(np.int64).reshape(2, size)


def tally(history: History, strategy: Strategy, vmm: Vmm,
          configs: Sequence[Config | Setting] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What a scorecard needs, without the ``[n, n]`` matrix: outcome counts
    ``[2, 6]`` and refused pairs by blame code ``[2, 4]`` (forward, backward;
    configurations pooled).

    The same numbers :func:`hcsim.evaluation.measures.counts` and
    :func:`~hcsim.evaluation.measures.refusals_by_blame` give on
    :func:`evaluate`'s outcomes (``test_counts_and_score_equal_the_spec``,
    ``tests/test_engine_tally.py``), counted on
    epoch pairs, each weighted by the release pairs it stands for (as
    :func:`counts` does): what a sweep scores per history.
    :class:`EngineUnsupported` if the engine does not model the evaluation.
    """
    got = tallies(history, [strategy], [vmm], configs)[0][0]
    if isinstance(got, EngineUnsupported):
        raise got
    return got


def tallies(history: History, strategies: Sequence[Strategy], vmms: Sequence[Vmm],
            configs: Sequence[Config | Setting] | None = None
            ) -> list[list[tuple[np.ndarray, np.ndarray] | EngineUnsupported]]:
    """:func:`tally` of each of ``strategies`` under each of ``vmms``, counted
    together: the source rows of every distinct model are stacked against
    the history's epochs and go through :func:`_kernel` and one weighted
    count at once (the layouts of a history usually share their epochs;
    models whose layouts do not are counted in one pass per epoch set).

    Per strategy, per policy: its ``(counts, refused)``, or the
    :class:`EngineUnsupported` saying why the engine does not model it
    (returned, not raised: the caller decides, e.g.
    :func:`hcsim.evaluation.backends.tallies`).
    """
    cfgs = _configs(configs)
    out: list[list] = [[None] * len(vmms) for _ in strategies]
    found: dict[int, tuple[Model, list[tuple[int, int]]]] = {}
    for s, strategy in enumerate(strategies):
        for i, vmm in enumerate(vmms):
            try:
                m = model(history, strategy, vmm)
            except EngineUnsupported as exc:
                out[s][i] = exc
                continue
            found.setdefault(id(m), (m, []))[1].append((s, i))
    if not found:
        return out
    first = next(iter(found.values()))[0]
    try:
        off = first.settings(cfgs)          # the history's: the same for every model
    except EngineUnsupported as exc:
        return [[exc if got is None else got for got in row] for row in out]
    key = off.tobytes()
    same: dict[bytes, list[Model]] = {}     # models to count, by their layout's epochs
    for m, _ in found.values():
        if key not in m.tallies:
            same.setdefault(m.arrays.starts.tobytes(), []).append(m)
    try:
        for todo in same.values():
            _count_stacked(todo, off)
    finally:
        _release()
    for m, where in found.values():
        counted, refused = m.tallies[key]
        for s, i in where:
            out[s][i] = (counted.copy(), refused.copy())
    return out


def _count_stacked(models: list[Model], off: np.ndarray) -> None:
    """Count the epoch pairs of ``models`` (distinct, of layouts of one history
    with the same epochs) in one pass and keep each model's
    ``(counts, refused)`` in its ``tallies``."""
    la = models[0].arrays
    starts, weights = _epoch_weights(models[0])
    E, C, P = len(starts), off.shape[1], len(models)
    src = [m.sources(starts, off) for m in models]
    dst: dict[int, _Side] = {}                                        # per layout
    for m in models:
        if id(m.arrays) not in dst:
            dst[id(m.arrays)] = m.destinations(starts)
    listed = np.zeros((P, C * E, E), np.int8)
    for p, (m, side) in enumerate(zip(models, src)):
        if m.lcode is not None:
            listed[p] = m._listed(side, m.le[starts])
    G = max(len(m.arrays.strict_lf) for m in models)
    top = np.full((P, C * E, G), _NONE, np.int64)
    slf = np.full((P, G), _NEVER, np.int64)         # padding: never listed, never refuses
    for p, (m, side) in enumerate(zip(models, src)):
        if side.top is not None:
            g = side.top.shape[1]
            top[p, :, :g] = side.top
            slf[p, :g] = m.arrays.strict_lf
    unsupported = starts[None, :] >= np.array([m.unsupported_from for m in models])[:, None]

    def cat(get):
        return np.concatenate([get(side) for side in src])
    several = len(dst) > 1
    rows = _Side(cat(lambda x: x.rel), (cat(lambda x: x.words[0]), cat(lambda x: x.words[1])),
                 cat(lambda x: x.T), cat(lambda x: x.fwe), cat(lambda x: x.U),
                 top=top.reshape(P * C * E, G) if G else None,
                 slf=np.repeat(slf, C * E, axis=0) if G and several else None)
    one = dst[id(la)]
    words = one.words
    if several:         # each row against its own layout's destination words
        words = []
        for w in (0, 1):
            per = np.stack([dst[id(m.arrays)].words[w] for m in models])    # [P, E, nw]
            out = _work(6 + w, (P * C * E, per[0].size), np.uint64)
            out.reshape(P, C * E, *per.shape[1:])[:] = per[:, None]
            words.append(out.reshape(P * C * E, *per.shape[1:]))
        words = tuple(words)
    dst_U = np.repeat(unsupported, C * E, axis=0)           # [P * C * E, E]
    code, _, _, blames = _kernel(la, rows, replace(one, words=words, U=dst_U),
                                 listed.reshape(P * C * E, E), blame=True)
    # bin = (policy * outcomes + outcome code) * 4 + blame (0 unless refused)
    k = len(OUTCOMES)
    bins = _work(8, (P, C * E * E), np.int64).reshape(P, C * E, E)
    np.copyto(bins, code.reshape(P, C * E, E))
    bins += (np.arange(P) * k)[:, None, None]
    bins *= 4
    bins += blames.reshape(P, C * E, E)
    got = _epoch_counts(bins, weights, 4 * k * P).reshape(2, P, k, 4)
    counted, refused = _frozen(got.sum(-1)), _frozen(got[:, :, REFUSED].copy())
    key = off.tobytes()
    for p, m in enumerate(models):
        m.tallies[key] = (counted[:, p], refused[:, p])


#: Counts of at most this many chunks of pairs (configurations x releases**2)
#: are counted in one (:func:`_count`): 4 at the default chunk size, measured
#: 2x faster at 316 releases than four chunks (their per-chunk calls).
_SMALL_CHUNKS = 4
_DIRECTIONS: dict[tuple[int, int], np.ndarray] = {}


def _direction(n: int, value: int = len(OUTCOMES)) -> np.ndarray:
    """``[n, n]`` int8: ``value`` where the destination is newer, else 0 (read-only)."""
    hit = _DIRECTIONS.get((n, value))
    if hit is None:
        if len(_DIRECTIONS) >= 8:
            _DIRECTIONS.pop(next(iter(_DIRECTIONS)))
        hit = _DIRECTIONS[n, value] = np.triu(np.full((n, n), value, np.int8), 1)
        hit.flags.writeable = False
    return hit


def _tally(codes: np.ndarray, offset: int = 0) -> np.ndarray:
    """How many of each outcome code (+ ``offset``): one vectorised compare per code.

    With ``offset`` 0 the last code is what the others leave; with an offset,
    0 marks elements that are not counted, so every code is compared.
    """
    k = len(OUTCOMES) - (offset == 0)
    out = np.array([np.count_nonzero(codes == o + offset) for o in range(k)]
                   + [0] * (len(OUTCOMES) - k), np.int64)
    if offset == 0:
        out[-1] = codes.size - out.sum()
    return out


__all__ = ["DEFAULT_CHUNK_PAIRS", "EngineUnsupported", "Model", "counts", "evaluate", "fresh",
           "model", "supports", "tallies", "tally"]
