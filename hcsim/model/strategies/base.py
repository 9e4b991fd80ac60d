"""The one small interface every register strategy implements.

A strategy decides *layout*: which feature registers (class 0x16) a kernel
of each release lists, their width, which bit(s) control each service, and
whether a write of a bit the kernel does not know fails (``-EINVAL``,
*strict*, as upstream) or is ignored (RAZ/WI).  The write path itself lives
in :mod:`hcsim.model.kvm` and is the same for every strategy; a strategy may only
add an invalidation rule (:meth:`Strategy.invalidates`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, NamedTuple

import numpy as np

from hcsim.errors import InputError
from hcsim.model import regs
from hcsim.model.history import History


@dataclass(frozen=True)
class FeatureReg:
    """One feature register of a layout."""

    id: int
    width: int
    listed_from: int     # first release whose register list has it
    strict: bool         # unknown set bit -> -EINVAL; else read-as-zero/write-ignored


@dataclass(frozen=True)
class Param:
    """A strategy parameter: its type, default and the check a value must pass."""

    default: int | str
    doc: str
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    power_of_two: bool = False

    def parse(self, key: str, text: str, spec: str) -> int | str:
        if isinstance(self.default, str):
            if text not in self.choices:
                raise InputError(f"strategy {spec!r}: {key} must be one of "
                                 f"{', '.join(self.choices)}, got {text!r}")
            return text
        try:
            value = int(text, 0)
        except ValueError:
            raise InputError(f"strategy {spec!r}: {key} must be an integer, "
                             f"got {text!r}") from None
        if self.minimum is not None and value < self.minimum or \
                self.maximum is not None and value > self.maximum:
            raise InputError(f"strategy {spec!r}: {key} must be in "
                             f"{self.minimum}..{self.maximum}, got {value}")
        if self.power_of_two and value & (value - 1):
            raise InputError(f"strategy {spec!r}: {key} must be a power of two "
                             f"in {self.minimum}..{self.maximum}, got {value}")
        return value


class RegColumns(NamedTuple):
    """A layout's registers (sorted by id) as read-only arrays."""

    ids: np.ndarray           # uint64
    widths: np.ndarray        # int64
    listed_from: np.ndarray   # int64
    strict: np.ndarray        # bool

    @classmethod
    def of(cls, regs: Sequence[FeatureReg]) -> RegColumns:
        out = cls(np.array([r.id for r in regs], np.uint64).reshape(-1),
                  np.array([r.width for r in regs], np.int64).reshape(-1),
                  np.array([r.listed_from for r in regs], np.int64).reshape(-1),
                  np.array([r.strict for r in regs], bool).reshape(-1))
        for a in out:
            a.flags.writeable = False
        return out


#: :func:`_by_id` of register tuples a strategy reuses from history to history
#: (``full-bitmap``'s 2048), kept with the tuple itself so that its id stays its own.
_SORTED: dict[int, tuple] = {}


def _by_id(regs: Sequence[FeatureReg]) -> tuple:
    """``regs`` sorted by id, each old position's new one (None: already
    sorted), each id's position, and the sorted registers' :class:`RegColumns`.

    A tuple (the same object for every history) is sorted once; what it
    gives is then the same objects too."""
    hit = _SORTED.get(id(regs)) if isinstance(regs, tuple) else None
    if hit is not None and hit[0] is regs:
        return hit[1]
    order = sorted(range(len(regs)), key=lambda k: regs[k].id)
    if all(k == i for i, k in enumerate(order)):
        where = None                        # already in id order
    else:
        where = [0] * len(regs)
        for new, old in enumerate(order):
            where[old] = new
    out = tuple(regs[k] for k in order)
    got = (out, where, {r.id: k for k, r in enumerate(out)}, RegColumns.of(out))
    if isinstance(regs, tuple):
        if len(_SORTED) >= 64:
            del _SORTED[next(iter(_SORTED))]
        _SORTED[id(regs)] = (regs, got)
    return got


class Layout:
    """Feature registers and service bits of one strategy on one history.

    ``bits[i]`` lists the (register position, bit) pairs that control
    ``history.services[i]``; an empty tuple means the service is not covered
    (always visible once supported, like ``std`` under ``full-bitmap``).
    """

    def __init__(self, history: History, regs: Sequence[FeatureReg],
                 bits: list[tuple[tuple[int, int], ...]]):
        self.history = history
        self.regs, where, self.position, self.columns = _by_id(regs)
        self.bits = (tuple(map(tuple, bits)) if where is None else
                     tuple(tuple((where[p], b) for p, b in pairs) for pairs in bits))
        #: What evaluators derive from the layout, kept with it (the engine's arrays).
        self.memo: dict = {}

    @cached_property
    def _masks(self) -> dict[int, tuple[list[int], list[int], list[int]]]:
        """:meth:`_cumulative`, when the spec first asks (the engine reads arrays)."""
        return self._cumulative()

    def _cumulative(self) -> dict[int, tuple[list[int], list[int], list[int]]]:
        """Per register holding bits: release steps with cumulative known and
        reset masks (registers without bits, most of ``full-bitmap``, are absent)."""
        steps: dict[int, dict[int, list[int]]] = {}
        for svc, pairs in zip(self.history.services, self.bits):
            for pos, bit in pairs:
                known, reset = steps.setdefault(pos, {}).setdefault(svc.introduced, [0, 0])
                steps[pos][svc.introduced] = [known | 1 << bit,
                                              reset | (svc.default_on << bit)]
        out = {}
        for pos, table in steps.items():
            rels, knowns, resets, known, reset = [], [], [], 0, 0
            for rel in sorted(table):
                known |= table[rel][0]
                reset |= table[rel][1]
                rels.append(rel)
                knowns.append(known)
                resets.append(reset)
            out[pos] = (rels, knowns, resets)
        return out

    def _at(self, pos: int, release: int, which: int) -> int:
        masks = self._masks.get(pos)
        if masks is None:
            return 0
        k = bisect_right(masks[0], release)
        return masks[which][k - 1] if k else 0

    def known_mask(self, pos: int, release: int) -> int:
        """Bits of register ``pos`` that a kernel of ``release`` implements."""
        return self._at(pos, release, 1)

    def reset(self, pos: int, release: int) -> int:
        """Reset value: bits of supported services whose default is on."""
        return self._at(pos, release, 2)

    def resets(self, release: int, positions: Iterable[int]) -> dict[int, int]:
        """:meth:`reset` of each of ``positions`` (registers without bits read 0)."""
        out = dict.fromkeys(positions, 0)
        for pos in self._masks.keys() & out.keys():
            out[pos] = self._at(pos, release, 2)
        return out

    def listed(self, release: int) -> dict[int, int]:
        """The registers a kernel of ``release`` lists: id -> position."""
        at = np.flatnonzero(self.columns.listed_from <= release)
        return dict(zip(self.columns.ids[at].tolist(), at.tolist()))

    def view(self, release: int, values: dict[int, int]) -> frozenset[str]:
        """The services a guest sees, given its feature register values."""
        supported = [(s, p) for s, p in zip(self.history.services, self.bits)
                     if s.introduced <= release]
        if release < self.history.registers_from:
            return frozenset(s.name for s, _ in supported)
        return frozenset(s.name for s, pairs in supported
                         if all(values.get(pos, 0) >> bit & 1 for pos, bit in pairs))

    def exhaustion(self) -> int | None:
        """First release after ``registers_from`` that lists a new register."""
        if not hasattr(self, "_exhaustion"):      # asked once per scorecard row
            lf = self.columns.listed_from
            later = lf[lf > self.history.registers_from]
            self._exhaustion = int(later.min()) if len(later) else None
        return self._exhaustion


class Strategy:
    """Base class: parameters parsed and validated when constructed."""

    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **values: Any):
        self.values = {k: p.default for k, p in self.params.items()}
        self.values.update(values)
        self._cache: dict[int, tuple[History, Layout]] = {}

    @property
    def spec(self) -> str:
        """Canonical ``NAME[:k=v,...]`` listing parameters that differ from default."""
        extra = [f"{k}={v}" for k, v in self.values.items()
                 if v != self.params[k].default]
        return self.name + (":" + ",".join(extra) if extra else "")

    def __repr__(self) -> str:
        return f"<strategy {self.spec}>"

    def layout(self, history: History) -> Layout:
        """The layout of this strategy on ``history`` (computed once)."""
        hit = self._cache.get(id(history))
        if hit is None or hit[0] is not history:
            hit = (history, self.build(history))
            self._cache[id(history)] = hit
        return hit[1]

    def forget(self, history: History) -> Layout | None:
        """Drop the layout of ``history`` that :meth:`layout` keeps, and return it."""
        hit = self._cache.get(id(history))
        if hit is None or hit[0] is not history:
            return None
        del self._cache[id(history)]
        return hit[1]

    def build(self, history: History) -> Layout:
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Width in bits of this strategy's feature registers."""
        return 64

    def reg_name(self, rid: int) -> str:
        """Name of a register of this strategy, for messages and tables."""
        return regs.reg_name(rid, bitmaps=self.kernel_names)

    #: Do feature registers carry the kernel's ``KVM_REG_ARM_*_BMAP`` names?
    kernel_names: ClassVar[bool] = False

    def invalidates(self, feature: bool) -> bool:
        """Does the first successful write to such a register clear all bitmaps?"""
        return False
