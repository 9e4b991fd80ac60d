"""What an evaluation produces: outcome codes per (configuration, source, destination).

The vocabulary every other module uses (:data:`OUTCOMES`, their letters and
integer codes, :data:`DIRECTIONS`), one :class:`Migration` (a single pair,
with its typed :class:`~hcsim.model.vmm.Cause` when it failed loudly) and
:class:`Outcomes` (every pair of one strategy under one VMM, from either
backend of :func:`hcsim.evaluation.backends.evaluate`).

Service sets are packed ``uint64`` words: service ``k`` (in
``history.services`` order) is bit ``k % 64`` of word ``k // 64``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Cause, Vmm

#: Outcome classes, in the order tables show them.
OUTCOMES = ("preserved", "gained", "lost", "mixed", "refused", "unsupported")
#: One letter per outcome, for letter matrices.
LETTERS = dict(zip(OUTCOMES, "PGLMRU"))
#: Integer code of each outcome (its index in :data:`OUTCOMES`).
CODES = {name: code for code, name in enumerate(OUTCOMES)}
PRESERVED, GAINED, LOST, MIXED, REFUSED, UNSUPPORTED = range(len(OUTCOMES))
#: Outcomes that break the guest silently.
SILENT = ("lost", "mixed")

#: Directions of ordered release pairs: forward (source older), backward.
DIRECTIONS = ("forward", "backward")
#: Column prefixes of the scorecard's outcome shares (``fwd_preserved``...).
SHARE_PREFIX = {"forward": "fwd", "backward": "bwd"}

#: Blame of a refusal by code (DESIGN.md section 9; ``""``: not refused):
#: the hypercall registers (firmware, feature), other registers, or both.
BLAMES = ("", "hypercall", "other", "both")
BLAME_CODES = {name: code for code, name in enumerate(BLAMES)}

#: The two ways of evaluating (:func:`hcsim.evaluation.backends.evaluate`).
BACKENDS = ("engine", "spec")

if sys.byteorder != "little":       # pragma: no cover - arm64/x86 are little-endian
    raise ImportError("hcsim.evaluation.outcomes packs bits assuming a little-endian host")


def words_for(services: int) -> int:
    """Number of 64-bit words that hold one bit per service (at least 1)."""
    return max(1, -(-services // 64))


def pack(bits: np.ndarray, nw: int) -> np.ndarray:
    """Boolean ``[..., K]`` to ``uint64 [..., nw]``: service ``k`` is bit ``k % 64`` of word ``k // 64``."""
    bits = np.asarray(bits, dtype=bool)
    pad = nw * 64 - bits.shape[-1]
    if pad:
        bits = np.concatenate([bits, np.zeros((*bits.shape[:-1], pad), bool)], axis=-1)
    return np.ascontiguousarray(np.packbits(bits, axis=-1, bitorder="little")).view(np.uint64)


def unpack(words: np.ndarray, services: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``uint64 [..., nw]`` to boolean ``[..., services]``."""
    raw = np.ascontiguousarray(words, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(raw, axis=-1, count=services, bitorder="little").astype(bool)


@dataclass(frozen=True)
class Migration:
    """One migration of a guest from release ``src`` to release ``dst``.

    ``cause`` says why a ``refused`` or ``unsupported`` pair failed; None
    otherwise.
    """

    src: int
    dst: int
    outcome: str
    gained: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    cause: Cause | None = None

    @property
    def detail(self) -> str:
        """The cause as text (``""`` when there is none), as outputs show it."""
        return "" if self.cause is None else str(self.cause)

    @property
    def blame(self) -> str:
        """``hypercall``, ``other`` or ``both`` for a refusal, else ``""``."""
        return self.cause.blame if self.outcome == "refused" and self.cause else ""


def classify(before: frozenset[str], after: frozenset[str]) -> str:
    """Outcome class of a guest view change."""
    gained, lost = after - before, before - after
    if gained and lost:
        return "mixed"
    return "lost" if lost else "gained" if gained else "preserved"


@dataclass
class Outcomes:
    """Every (configuration, source, destination) of one strategy under one VMM.

    ``codes[c, s, d]`` is a code of :data:`CODES` (int8); ``gained`` and
    ``lost`` are packed service words ``[c, s, d, nw]``, empty for
    ``refused`` and ``unsupported`` (None when evaluated without sets).  ``backend`` is ``"engine"`` or
    ``"spec"``; ``reason`` says why the spec was used when the engine was
    not (``""`` otherwise).  Causes of loud failures are kept when the spec
    computed them, and replayed by the spec on demand otherwise
    (:meth:`migration`).
    """

    history: History
    strategy: Strategy
    vmm: Vmm
    configs: tuple[Config | Setting, ...]
    codes: np.ndarray
    gained: np.ndarray | None
    lost: np.ndarray | None
    backend: str
    reason: str = ""
    vcpus: int = 1
    causes: dict[tuple[int, int, int], Cause] | None = None
    blames: np.ndarray | None = None     # [c, s, d] codes of BLAMES (engine)

    def blame_codes(self) -> np.ndarray:
        """``[c, s, d]`` blame codes (:data:`BLAMES`): 0 unless refused."""
        if self.blames is not None:
            return self.blames
        out = np.zeros(self.codes.shape, np.int8)
        for (c, s, d), cause in (self.causes or {}).items():
            if self.codes[c, s, d] == REFUSED:
                out[c, s, d] = BLAME_CODES[cause.blame]
        self.blames = out
        return out

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.history.services)

    @property
    def n(self) -> int:
        """Number of releases."""
        return self.codes.shape[1]

    def names(self, words: np.ndarray) -> frozenset[str]:
        """Service names of one packed set."""
        bits = unpack(words, len(self.history.services))
        return frozenset(name for name, on in zip(self.services, bits) if on)

    def cause(self, c: int, s: int, d: int) -> Cause | None:
        """Why pair ``(c, s, d)`` failed loudly (None if it did not)."""
        if self.codes[c, s, d] < REFUSED:
            return None
        if self.causes is not None:
            return self.causes.get((c, s, d))
        from hcsim.evaluation.spec import migrate  # the spec replays it
        return migrate(self.history, self.strategy, self.vmm, s, d, self.configs[c],
                       self.vcpus).cause

    def migration(self, s: int, d: int, c: int = 0) -> Migration:
        """Pair ``(s, d)`` of configuration ``c``, with its cause."""
        if self.gained is None or self.lost is None:
            raise ValueError("outcomes evaluated without sets (sets=False)")
        return Migration(s, d, OUTCOMES[int(self.codes[c, s, d])],
                         self.names(self.gained[c, s, d]), self.names(self.lost[c, s, d]),
                         self.cause(c, s, d))

    def migrations(self, c: int = 0) -> list[Migration]:
        """Every pair of configuration ``c``, source-major."""
        return [self.migration(s, d, c) for s in range(self.n) for d in range(self.n)]
