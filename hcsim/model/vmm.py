"""VMM save/restore policies, written only against the :mod:`hcsim.model.kvm` API.

Each policy is a small class: which registers it saves, which sizes it can
handle, its wire cost per register, and how it writes the stream on the
destination (FACTS.md section 5, DESIGN.md section 3).

* ``qemu`` (``target/arm/kvm.c``, ``machine.c``): saves every listed id,
  sorted; handles U32/U64 only.  On the destination it reads every listed
  register at VM creation, checks the incoming count against its own
  (``cpreg_vmstate_array_len``), walks both sorted lists (an unknown incoming
  id sorting before its last id fails; after every id, dropped), overlays the
  matched values and writes back its whole list in ascending order
  (``write_list_to_kvmstate``); any ``SET_ONE_REG`` error fails.
* ``qemu-tolerant``: as ``qemu``, but an incoming feature register the
  destination lacks, whose value is 0, is dropped before the count check
  (QEMU's ``VENDOR_HYP_BMAP_2`` fix, generalised to every feature register).
* ``zero-unknown`` (Oliver's wish): as ``qemu``, and every destination feature
  register absent from the stream is written 0.
* ``firecracker``, ``cloud-hypervisor``, ``crosvm``: write only the registers
  of their snapshot, in snapshot order; any error aborts; crosvm never saves
  feature registers (class 0x16).

Configuring a VM (turning services off) is done by the VMM on the source
before saving: it writes every feature register it handles with the wanted
value, in ascending id order (a partial write would let invalidate-on-write
clear the rest), and the firmware registers a setting names (``PSCI_VERSION``).
crosvm cannot configure feature registers: its guests keep the kernel's
defaults; it can write firmware values (it saves class 0x14).
"""

from __future__ import annotations

from typing import ClassVar

from hcsim.errors import InputError
from hcsim.model.kvm import VCPU, KvmError
from hcsim.model.regs import is_feature, width_of

#: One vCPU's saved registers: (id, value) in the order the VMM saved them.
Stream = list[list[tuple[int, int]]]


class Refused(Exception):
    """The restore failed loudly; the VMM aborts the migration."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Vmm:
    """A save/restore policy."""

    name: ClassVar[str]
    summary: ClassVar[str]
    widths: ClassVar[tuple[int, ...]] = (32, 64)

    def saves(self, rid: int) -> bool:
        """Does the VMM save (and so restore) this register?"""
        return True

    def handles(self, rid: int) -> bool:
        """Can the VMM live with a kernel that lists this register?"""
        return not self.saves(rid) or width_of(rid) in self.widths

    def wire_bytes(self, rid: int) -> int:
        """Bytes this register costs in the migration stream, per vCPU."""
        return 16

    def save(self, vcpus: list[VCPU]) -> Stream:
        """GET every saved register of every vCPU, in list order."""
        return [[(rid, cpu.get_one_reg(rid)) for rid in cpu.get_reg_list()
                 if self.saves(rid)] for cpu in vcpus]

    def restore(self, vcpus: list[VCPU], stream: Stream) -> None:
        """Write the snapshot's registers, in snapshot order (default rule)."""
        for cpu, regs in zip(vcpus, stream):
            for rid, value in regs:
                _set(cpu, rid, value)

    def configure(self, vcpus: list[VCPU], values: dict[int, int]) -> None:
        """Write wanted register values (source side, before save).

        Every feature register the VMM saves is written (its value in
        ``values``, else what it reads); a firmware register only when
        ``values`` names it (a :class:`~hcsim.model.config.Setting` with firmware
        values), in the same ascending id order, so firmware comes first.
        """
        cpu = vcpus[0]
        for rid in cpu.get_reg_list():
            if self.saves(rid) and (is_feature(rid) or rid in values):
                _set(cpu, rid, values.get(rid, cpu.get_one_reg(rid)))


def _set(cpu: VCPU, rid: int, value: int) -> None:
    try:
        cpu.set_one_reg(rid, value)
    except KvmError as exc:
        raise Refused(f"{exc.name} on {cpu.vm.kernel.reg_name(rid)}") from None


class Qemu(Vmm):
    name = "qemu"
    summary = "sorted full list, count check, writes back whole list (16 B/reg)"
    tolerant = False
    zero_unknown = False

    def restore(self, vcpus: list[VCPU], stream: Stream) -> None:
        for cpu, incoming in zip(vcpus, stream):
            ours = [rid for rid in cpu.get_reg_list() if self.saves(rid)]
            values = {rid: cpu.get_one_reg(rid) for rid in ours}
            incoming = sorted(incoming)
            if self.tolerant:
                incoming = [(rid, v) for rid, v in incoming
                            if rid in values or not (is_feature(rid) and v == 0)]
            if len(incoming) > len(ours):
                raise Refused(f"count {len(incoming)} > {len(ours)} "
                              "(cpreg_vmstate_array_len)")
            last = ours[-1] if ours else -1
            for rid, value in incoming:
                if rid in values:
                    values[rid] = value
                elif rid < last:
                    raise Refused(f"unknown {cpu.vm.kernel.reg_name(rid)} in stream")
            if self.zero_unknown:
                sent = {rid for rid, _ in incoming}
                for rid in ours:
                    if is_feature(rid) and rid not in sent:
                        values[rid] = 0
            for rid in ours:
                _set(cpu, rid, values[rid])


class QemuTolerant(Qemu):
    name = "qemu-tolerant"
    summary = "qemu, dropping unknown feature registers whose value is 0"
    tolerant = True


class ZeroUnknown(Qemu):
    name = "zero-unknown"
    summary = "qemu, zeroing feature registers absent from the stream"
    zero_unknown = True


class Firecracker(Vmm):
    name = "firecracker"
    summary = "every id, any size U8..U2048; 8 B id + value"
    widths = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)

    def wire_bytes(self, rid: int) -> int:
        return 8 + width_of(rid) // 8


class CloudHypervisor(Vmm):
    name = "cloud-hypervisor"
    summary = "U32/U64 ids as JSON (48 B/reg)"

    def wire_bytes(self, rid: int) -> int:
        return 48


class Crosvm(Vmm):
    name = "crosvm"
    summary = "class 0x14 only, never the bitmaps (16 B/reg)"

    def saves(self, rid: int) -> bool:
        return not is_feature(rid)


REGISTRY: dict[str, type[Vmm]] = {
    cls.name: cls for cls in
    (Qemu, QemuTolerant, Firecracker, CloudHypervisor, Crosvm, ZeroUnknown)
}


def parse(name: str) -> Vmm:
    """A VMM policy by name."""
    if name not in REGISTRY:
        raise InputError(f"unknown VMM {name!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]()
