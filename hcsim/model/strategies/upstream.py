"""``upstream``: one 64-bit bitmap per SMCCC space, as merged in v5.19.

Commits 05714cab7d63, 428fd6788d4d, b22216e1a617 (v5.19) and c0000e58c74e
(``KVM_REG_ARM_VENDOR_HYP_BMAP_2``, v6.15).  Spaces own indices 0 (``std``),
1 (``std-hyp``) and 2 (``vendor-hyp``); pinned (register, bit) pairs are
reserved first; an unpinned service takes the lowest free bit of its space's
newest register, and a full register makes way for a new one at the lowest
unused index >= 3 (DESIGN.md section 8).
"""

from __future__ import annotations

from hcsim.model.history import History
from hcsim.model.regs import decode, feat_reg
from hcsim.model.smccc import SPACES
from hcsim.model.strategies.base import FeatureReg, Layout, Param, Strategy

BITS = 64


class Upstream(Strategy):
    name = "upstream"
    summary = "per-space 64-bit bitmaps, strict -EINVAL (Linux v5.19)"
    kernel_names = True

    def build(self, history: History) -> Layout:
        base = {space: n for n, space in enumerate(SPACES)}
        used = {decode(s.register).index for s in history.services
                if s.register is not None}
        used |= set(base.values())
        taken: dict[int, set[int]] = {}
        for s in history.services:
            if s.register is not None:
                taken.setdefault(decode(s.register).index, set()).add(s.bit)
        chains = {space: [idx] for space, idx in base.items()}
        first_need: dict[int, int] = {}
        bits = []
        for s in history.services:
            if s.register is not None:
                index, bit = decode(s.register).index, s.bit
                if index not in chains[s.space]:
                    chains[s.space].append(index)
            else:
                index = chains[s.space][-1]
                bit = _lowest_free(taken.get(index, set()))
                if bit is None:
                    index = min(set(range(len(SPACES), len(used) + len(SPACES) + 1)) - used)
                    used.add(index)
                    chains[s.space].append(index)
                    bit = 0
                taken.setdefault(index, set()).add(bit)
            first_need.setdefault(index, s.introduced)
            bits.append(((index, bit),))
        regs = [FeatureReg(feat_reg(i), BITS, max(history.registers_from, rel), True)
                for i, rel in first_need.items()]
        pos = {r.id: k for k, r in enumerate(regs)}
        return Layout(history, regs,
                      [tuple((pos[feat_reg(i)], b) for i, b in p) for p in bits])


class InvalidateOnWrite(Upstream):
    name = "invalidate-on-write"
    summary = "upstream layout; first write clears every bitmap (RFC v1)"
    params = {"scope": Param("bitmaps", "bitmaps: a write to a feature register "
                             "invalidates; fw: any firmware or feature register",
                             choices=("bitmaps", "fw"))}

    def invalidates(self, feature: bool) -> bool:
        return feature or self.values["scope"] == "fw"


def _lowest_free(bits: set[int]) -> int | None:
    for b in range(BITS):
        if b not in bits:
            return b
    return None
