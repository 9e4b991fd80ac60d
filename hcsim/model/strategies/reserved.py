"""Reserved ranges: ``raz-wi``, ``wide`` and our ``raz-einval``.

All three pre-allocate R registers of W bits at indices 0..R-1, listed from
``registers_from`` and shared by every space, with one bit per service
packed in order of introduction.  Services past the W*R reserved bits get
overflow registers (indices R, R+1, ..., same width, packed) that appear
only from the release that needs them and follow ``upstream`` semantics.

They differ in what a write of an unassigned bit does:

* ``raz-wi`` / ``wide`` (Oliver's proposal, Marc's wide registers): read as
  zero, writes ignored, no error.
* ``raz-einval`` (ours): read as zero, a write of 0 is accepted, a write of 1
  fails with ``-EINVAL``.  An old kernel therefore refuses a guest that uses
  a service it lacks, instead of dropping it silently, while the register
  list never grows inside the reservation, so QEMU's count check never sees
  a new register.

``raz-einval:overflow=opt-in`` makes every service past the reservation
opt-in (reset 0, as Linux made ``VENDOR_HYP_BMAP_2`` in v6.15): an overflow
register then never turns a service on for a guest whose source kernel
lacked it, at the price of new VMs of an unchanged VMM not getting those
services (the pickup measure).  Implemented as the layout's own copy of the
history with those services ``default = "off"``, which the spec and the
engine both read.

Under a history's ``bits = "function-numbered"`` (:mod:`hcsim.model.history`)
the shared range is packed by function number instead of by service: a
service with ``functions = k`` takes the bit at the next free position and
uses up k positions, so the reservation holds 64*R function numbers.  (A
shared range cannot use each space's own function numbers; this keeps the
density of the per-space function-numbered bitmaps.)  Overflow registers
exist only where a service's bit falls; an index that no bit falls in is
skipped.  ``space_registers`` does not apply: reserved ranges are listed
from ``registers_from``.
"""

from __future__ import annotations

from dataclasses import replace

from hcsim.model.history import History
from hcsim.model.regs import feat_reg
from hcsim.model.strategies.base import FeatureReg, Layout, Param, Strategy
from hcsim.model.strategies.upstream import per_space

RANGES = Param(4, "reserved registers", minimum=1, maximum=1024)


class Reserved(Strategy):
    """Shared layout of the reserved-range strategies."""

    reserved_strict = False

    @property
    def width(self) -> int:
        return int(self.values.get("width", 64))

    def build(self, history: History) -> Layout:
        width, ranges = self.width, int(self.values["ranges"])
        regs = [FeatureReg(feat_reg(i, width), width, history.registers_from,
                           self.reserved_strict) for i in range(ranges)]
        bits = []
        position = {i: i for i in range(ranges)}      # register index -> list position
        slot = 0
        for s in history.services:
            index, bit = divmod(slot, width)
            slot += s.functions if history.bits == "function-numbered" else 1
            if index not in position:
                position[index] = len(regs)
                regs.append(FeatureReg(feat_reg(index, width), width,
                                       max(history.registers_from, s.introduced), True))
            bits.append(((position[index], bit),))
        if self.values.get("overflow") == "opt-in":
            history = replace(history, services=tuple(
                replace(s, default_on=False) if pairs[0][0] >= ranges else s
                for s, pairs in zip(history.services, bits)))
        return Layout(history, regs, bits)


class RazWi(Reserved):
    name = "raz-wi"
    summary = "R reserved 64-bit registers, unassigned bits RAZ/WI (Oliver)"
    params = {"ranges": RANGES}


class Wide(Reserved):
    """Marc's wide registers ("KVM supports anything from 8 to 2048 bits").

    Two readings of the thread, selected by ``writes``:

    * ``raz-wi`` (default, the thread read as a variant of Oliver's
      reservation): R reserved W-bit registers, unassigned bits RAZ/WI;
    * ``invalidate`` (Marc's own: wide registers as the vehicle of
      invalidate-on-write, "This would make it pretty easy to implement the
      above"): upstream's per-space chains with W-bit registers, strict
      ``-EINVAL`` on an unknown bit, and the first write to a feature
      register clears every feature register first.  Wider registers mean
      fewer of them, so a new register (the event that breaks QEMU's count
      check) is rarer.  ``ranges`` does not apply.
    """

    name = "wide"
    summary = "W-bit registers, 64..2048: RAZ/WI range or invalidate-on-write (Marc)"
    params = {"width": Param(2048, "register width in bits", minimum=64,
                             maximum=2048, power_of_two=True),
              "ranges": Param(1, "reserved registers (writes=raz-wi)",
                              minimum=1, maximum=1024),
              "writes": Param("raz-wi", "raz-wi: reserved range, unknown bits "
                              "ignored; invalidate: per-space chains, strict, "
                              "first write clears every feature register",
                              choices=("raz-wi", "invalidate"))}

    def build(self, history: History) -> Layout:
        if self.values["writes"] == "invalidate":
            return per_space(history, self.width)
        return super().build(history)

    def invalidates(self, feature: bool) -> bool:
        return feature and self.values["writes"] == "invalidate"


class RazEinval(Reserved):
    name = "raz-einval"
    summary = "ours: reserved range, RAZ, writing 1 to an unknown bit -EINVAL"
    params = {"ranges": RANGES,
              "overflow": Param("default", "services past the range: default (their own "
                                "default, as upstream) or opt-in (reset 0, as "
                                "VENDOR_HYP_BMAP_2)", choices=("default", "opt-in"))}
    reserved_strict = True
