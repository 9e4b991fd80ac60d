"""``upstream``: one 64-bit bitmap per SMCCC space, as merged in v5.19.

Commits 05714cab7d63, 428fd6788d4d, b22216e1a617 (v5.19) and c0000e58c74e
(``KVM_REG_ARM_VENDOR_HYP_BMAP_2``, v6.15).  Spaces own indices 0 (``std``),
1 (``std-hyp``) and 2 (``vendor-hyp``); pinned (register, bit) pairs are
reserved first; an unpinned service takes the lowest free bit of its space's
newest register, and a full register makes way for a new one at the lowest
unused index >= 3 (DESIGN.md section 8).
"""

from __future__ import annotations

from hcsim.errors import InputError
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
        return per_space(history, BITS)


def per_space(history: History, width: int = BITS) -> Layout:
    """Upstream's layout with ``width``-bit registers: one chain per space,
    the space's own index first, a full register making way for a new one at
    the lowest unused index >= 3.

    A pinned ``(register, bit)`` names upstream's 64-bit placement; in wider
    registers it keeps its place in the space: the k-th 64-bit register of
    the space's upstream chain is bits ``64k..64k+63`` of the wide chain.

    The history's layout assumptions (:mod:`hcsim.model.history`):
    ``space_registers = "eager"`` lists every space's first register from
    ``registers_from`` even before the space has a service;
    ``bits = "function-numbered"`` puts an unpinned service at its first
    function number ``f`` (numbered from 0 per space in order of
    introduction, pinned services included): bit ``f mod width`` of the
    ``f div width``-th register of the space's chain, a register that exists
    only once a service needs it.  Its slot pinned by another service is bad
    input.
    """
    if history.bits == "function-numbered":
        return _function_numbered(history, width)
    pins = _pins(history, width)
    used = {index for index, _ in pins.values()} | set(range(len(SPACES)))
    taken: dict[int, set[int]] = {}
    for index, bit in pins.values():
        taken.setdefault(index, set()).add(bit)
    chains = {space: [n] for n, space in enumerate(SPACES)}
    first_need: dict[int, int] = {}
    bits = []
    for n, s in enumerate(history.services):
        if n in pins:
            index, bit = pins[n]
            if index not in chains[s.space]:
                chains[s.space].append(index)
        else:
            index = chains[s.space][-1]
            bit = _lowest_free(taken.get(index, set()), width)
            if bit is None:
                index = min(set(range(len(used) + len(SPACES) + 1)) - used)
                used.add(index)
                chains[s.space].append(index)
                bit = 0
            taken.setdefault(index, set()).add(bit)
        first_need.setdefault(index, s.introduced)
        bits.append(((index, bit),))
    return _layout(history, width, first_need, bits)


def _layout(history: History, width: int, first_need: dict[int, int],
            bits: list[tuple[tuple[int, int], ...]]) -> Layout:
    """The registers of ``first_need`` (index -> release), plus under
    ``space_registers = "eager"`` the three space registers from ``registers_from``."""
    if history.space_registers == "eager":
        for index in range(len(SPACES)):
            first_need[index] = history.registers_from
    regs = [FeatureReg(feat_reg(i, width), width, max(history.registers_from, rel), True)
            for i, rel in first_need.items()]
    pos = {i: k for k, i in enumerate(first_need)}          # index -> position in regs
    return Layout(history, regs, [tuple([(pos[i], b) for i, b in p]) for p in bits])


def _function_numbered(history: History, width: int) -> Layout:
    """:func:`per_space` with ``bits = "function-numbered"``."""
    pins = _pins(history, width)
    used = {index for index, _ in pins.values()} | set(range(len(SPACES)))
    taken = {pin: n for n, pin in pins.items()}
    # chain[space][k]: the register holding the space's functions k*width..;
    # pinned registers claim their place in the chain first.
    chains: dict[str, dict[int, int]] = {space: {0: n} for n, space in enumerate(SPACES)}
    for n, (index, _) in pins.items():
        chain = chains[history.services[n].space]
        if index not in chain.values():
            chain[max(chain) + 1] = index
    next_fn = dict.fromkeys(SPACES, 0)
    first_need: dict[int, int] = {}
    bits = []
    for n, s in enumerate(history.services):
        fn = next_fn[s.space]
        next_fn[s.space] += s.functions
        if n in pins:
            index, bit = pins[n]
        else:
            k, bit = divmod(fn, width)
            chain = chains[s.space]
            if k not in chain:
                chain[k] = min(set(range(len(used) + len(SPACES) + 1)) - used)
                used.add(chain[k])
            index = chain[k]
            if (index, bit) in taken:
                other = history.services[taken[(index, bit)]].name
                raise InputError(f"history {history.name!r}: service {s.name!r}: "
                                 f"function-numbered bit {bit} of register {index} "
                                 f"is pinned by {other!r}")
            taken[(index, bit)] = n
        first_need.setdefault(index, s.introduced)
        bits.append(((index, bit),))
    return _layout(history, width, first_need, bits)


def _pins(history: History, width: int) -> dict[int, tuple[int, int]]:
    """Service number -> (register index, bit) for the services the history pins."""
    if width == BITS:
        return {n: (decode(s.register).index, s.bit)
                for n, s in enumerate(history.services) if s.register is not None}
    chains: dict[str, list[int]] = {space: [k] for k, space in enumerate(SPACES)}
    for s in history.services:
        index = decode(s.register).index if s.register is not None else None
        if index is not None and index not in chains[s.space]:
            chains[s.space].append(index)
    out = {}
    for n, s in enumerate(history.services):
        if s.register is not None:
            wide_bit = chains[s.space].index(decode(s.register).index) * BITS + s.bit
            k, bit = divmod(wide_bit, width)   # k < len(chain) as width >= 64
            out[n] = (chains[s.space][k], bit)
    return out


class InvalidateOnWrite(Upstream):
    name = "invalidate-on-write"
    summary = "upstream layout; first write clears every bitmap (RFC v1)"
    params = {"scope": Param("bitmaps", "bitmaps: a write to a feature register "
                             "invalidates; fw: any firmware or feature register",
                             choices=("bitmaps", "fw"))}

    def invalidates(self, feature: bool) -> bool:
        return feature or self.values["scope"] == "fw"


def _lowest_free(bits: set[int], width: int) -> int | None:
    for b in range(width):
        if b not in bits:
            return b
    return None
