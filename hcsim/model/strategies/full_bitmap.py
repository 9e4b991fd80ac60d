"""``full-bitmap``: one bit per function number of both hypervisor spaces.

Marc's "16kB worth of zeroes": 2 spaces x 65536 functions = 131072 bits, in
W-bit registers (default 64, i.e. 2048 registers), ``std-hyp`` first, then
``vendor-hyp``, all listed from ``registers_from``.  A service is visible when
all its function bits are set; bits of functions the kernel does not
implement read as zero and ignore writes.

Marc's sentence counts "two HC spaces (the ARM-controlled one, and the
KVM-specific one)", i.e. OEN 5 and 6: ``spaces=hyp`` (default) covers those
and leaves ``std`` (OEN 4, TRNG) uncovered, always visible once supported.
``spaces=all`` is the reading that also covers OEN 4: 3 x 65536 bits, 24 KiB,
``std`` first.
"""

from __future__ import annotations

from functools import lru_cache

from hcsim.errors import InputError
from hcsim.model.history import History
from hcsim.model.regs import feat_reg
from hcsim.model.smccc import FUNCTIONS_PER_SPACE, HYP_SPACES, SPACES
from hcsim.model.strategies.base import FeatureReg, Layout, Param, Strategy


class FullBitmap(Strategy):
    name = "full-bitmap"
    summary = "65536 function bits per hyp space (spaces=all: std too), RAZ/WI (Marc's 16kB)"
    params = {"width": Param(64, "register width in bits", minimum=64,
                             maximum=2048, power_of_two=True),
              "spaces": Param("hyp", "hyp: OEN 5 and 6 (Marc's 16kB); all: "
                              "also std, OEN 4 (24kB)", choices=("hyp", "all"))}

    @property
    def width(self) -> int:
        return int(self.values["width"])

    def build(self, history: History) -> Layout:
        width = self.width
        per_space = FUNCTIONS_PER_SPACE // width
        spaces = HYP_SPACES if self.values["spaces"] == "hyp" else tuple(SPACES)
        regs = _registers(width, history.registers_from, len(spaces))
        next_fn = dict.fromkeys(spaces, 0)
        bits = []
        for s in history.services:
            if s.space not in next_fn:
                bits.append(())
                continue
            first = next_fn[s.space]
            next_fn[s.space] += s.functions
            if next_fn[s.space] > FUNCTIONS_PER_SPACE:
                raise InputError(f"history {history.name!r}: space {s.space!r} "
                                 f"needs more than {FUNCTIONS_PER_SPACE} function "
                                 f"numbers (service {s.name!r})")
            base = spaces.index(s.space) * per_space
            bits.append(tuple((base + f // width, f % width)
                              for f in range(first, first + s.functions)))
        return Layout(history, regs, bits)


@lru_cache(maxsize=64)
def _registers(width: int, registers_from: int, spaces: int) -> tuple[FeatureReg, ...]:
    """The 65536 x spaces / width registers (the same for every history: built once)."""
    return tuple(FeatureReg(feat_reg(i, width), width, registers_from, False)
                 for i in range(FUNCTIONS_PER_SPACE // width * spaces))
