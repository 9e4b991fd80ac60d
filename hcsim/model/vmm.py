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
* ``qemu-tolerant`` (*hypothetical*: a review suggestion on the QEMU list,
  never implemented): as ``qemu``, but an incoming feature register the
  destination lacks, whose value is 0, is dropped before the count check.
* ``qemu-compat``: QEMU with Eric Auger's posted series (RFC 2025-09, v4
  2026-01-26, "failed to load cpu:cpreg_vmstate_array_len"; FACTS.md
  section 4; posted, not known to be merged): ``x-mig-hidden-regs`` ids are
  removed from the cpreg list (neither saved nor restored, whatever their
  value, so neither configured); incoming ids in ``x-mig-safe-missing-regs``
  that the destination lacks are ignored, in the count check too.
  Parameters ``hidden=ID;ID`` and ``safe-missing=ID;ID`` (hex ids or kernel
  names), default the series' compat for the virt machine:
  ``VENDOR_HYP_BMAP_2`` hidden; ``TCR2_EL1``, ``PIRE0_EL1``, ``PIR_EL1``
  safe-missing.
* ``zero-unknown`` (Oliver's wish): as ``qemu``, and every destination feature
  register absent from the stream is written 0.
* ``firecracker``, ``cloud-hypervisor``, ``crosvm``: write only the registers
  of their snapshot, in snapshot order; any error aborts; crosvm saves only
  class 0x14 (never the bitmaps, nor any other register).

The rules run over the whole list ``KVM_GET_REG_LIST`` returns (DESIGN.md
section 9): in the ``all`` view of a history with other-register data that
includes the system registers, so QEMU's count check and walk meet their
drift, and a snapshot writer gets ``-ENOENT`` writing one the destination
lacks.  Every refusal carries a *blame* (:attr:`Refused.blame`): the kinds
of the registers the failing check trips on: ``hypercall`` (firmware or
feature registers), ``other`` or ``both``.  The count check trips on every
incoming id the destination lacks; the walk on every unknown id sorting
before the destination's last; the writes on every register whose
``SET_ONE_REG`` fails (QEMU writes its whole list before reporting; a
snapshot writer aborts at the first error, and the blame also counts the
snapshot registers after it that would fail).  The detail names the first
of them by kernel name.

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
from hcsim.model.regs import (
    KVM_REG_ARM64_SVE,
    KVM_REG_ARM_CORE,
    KVM_REG_ARM_FW,
    coproc_of,
    is_feature,
    width_of,
)

#: One vCPU's saved registers: (id, value) in the order the VMM saved them.
Stream = list[list[tuple[int, int]]]


#: Blame of a refusal: which kinds of registers the failing check trips on.
BLAMES = ("hypercall", "other", "both")


def is_hypercall(rid: int) -> bool:
    """Firmware (class 0x14) or feature (class 0x16) register."""
    return coproc_of(rid) == KVM_REG_ARM_FW or is_feature(rid)


def blame_of(ids) -> str:
    """``hypercall``, ``other`` or ``both`` for the registers ``ids``."""
    kinds = {is_hypercall(r) for r in ids}
    return "both" if len(kinds) == 2 else "hypercall" if True in kinds else "other"


class Refused(Exception):
    """The restore failed loudly; the VMM aborts the migration.

    ``blame``: ``hypercall``, ``other`` or ``both`` (module docstring);
    ``reg``: the first offending register id, if any.
    """

    def __init__(self, detail: str, blame: str = "hypercall", reg: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.blame = blame
        self.reg = reg


class Vmm:
    """A save/restore policy."""

    name: ClassVar[str]
    summary: ClassVar[str]
    widths: ClassVar[tuple[int, ...]] = (32, 64)

    def saves(self, rid: int) -> bool:
        """Does the VMM save (and so restore) this register?"""
        return coproc_of(rid) not in (KVM_REG_ARM_CORE, KVM_REG_ARM64_SVE)

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
        """Write the snapshot's registers, in snapshot order (default rule).

        The first failing write aborts; the blame also counts the snapshot
        registers after it whose write would fail."""
        for cpu, regs in zip(vcpus, stream):
            failed = []
            for rid, value in regs:
                try:
                    cpu.set_one_reg(rid, value)
                except KvmError as exc:
                    failed.append((rid, exc))
            if failed:
                rid, exc = failed[0]
                raise Refused(f"{exc.name} on {cpu.vm.kernel.reg_name(rid)}",
                              blame_of(r for r, _ in failed), rid)

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
        raise Refused(f"{exc.name} on {cpu.vm.kernel.reg_name(rid)}", blame_of([rid]),
                      rid) from None


class Qemu(Vmm):
    name = "qemu"
    summary = "sorted full list, count check, writes back whole list (16 B/reg)"
    tolerant = False
    zero_unknown = False
    hidden: frozenset[int] = frozenset()
    safe_missing: frozenset[int] = frozenset()

    def saves(self, rid: int) -> bool:
        return super().saves(rid) and rid not in self.hidden

    def restore(self, vcpus: list[VCPU], stream: Stream) -> None:
        for cpu, incoming in zip(vcpus, stream):
            name = cpu.vm.kernel.reg_name
            ours = [rid for rid in cpu.get_reg_list() if self.saves(rid)]
            values = {rid: cpu.get_one_reg(rid) for rid in ours}
            incoming = sorted(incoming)
            if self.tolerant:
                incoming = [(rid, v) for rid, v in incoming
                            if rid in values or not (is_feature(rid) and v == 0)]
            if self.safe_missing:
                incoming = [(rid, v) for rid, v in incoming
                            if rid in values or rid not in self.safe_missing]
            lacking = [rid for rid, _ in incoming if rid not in values]
            if len(incoming) > len(ours):
                # "count N > M" is hcsim's paraphrase of QEMU's "Invalid value N
                # expecting positive value <= M"; the words in parentheses are QEMU's
                raise Refused(f"count {len(incoming)} > {len(ours)} (QEMU: failed to load "
                              f"cpu:cpreg_vmstate_array_len); {name(lacking[0])} not on "
                              "the destination", blame_of(lacking), lacking[0])
            last = ours[-1] if ours else -1
            early = [rid for rid in lacking if rid < last]
            if early:
                # hcsim's wording; QEMU only reports "failed to load cpu"
                raise Refused(f"unknown {name(early[0])} in stream", blame_of(early), early[0])
            for rid, value in incoming:
                if rid in values:
                    values[rid] = value
            if self.zero_unknown:
                sent = {rid for rid, _ in incoming}
                for rid in ours:
                    if is_feature(rid) and rid not in sent:
                        values[rid] = 0
            failed = []        # write_list_to_kvmstate writes every register, then fails
            for rid in ours:
                try:
                    cpu.set_one_reg(rid, values[rid])
                except KvmError as exc:
                    failed.append((rid, exc))
            if failed:
                rid, exc = failed[0]
                raise Refused(f"{exc.name} on {name(rid)}", blame_of(r for r, _ in failed), rid)


class QemuTolerant(Qemu):
    name = "qemu-tolerant"
    summary = ("hypothetical (a review suggestion, never implemented): qemu, dropping "
               "unknown feature registers whose value is 0")
    tolerant = True


#: ``qemu-compat`` defaults: the series' compat for the virt machine.
VENDOR_HYP_BMAP_2 = 0x6030000000160003
TCR2_EL1, PIRE0_EL1, PIR_EL1 = 0x603000000013C103, 0x603000000013C512, 0x603000000013C513
COMPAT_HIDDEN = (VENDOR_HYP_BMAP_2,)
COMPAT_SAFE_MISSING = (TCR2_EL1, PIRE0_EL1, PIR_EL1)


class QemuCompat(Qemu):
    name = "qemu-compat"
    summary = ("qemu + Eric Auger's posted series (2026): x-mig-hidden-regs, "
               "x-mig-safe-missing-regs")
    params = {"hidden": COMPAT_HIDDEN, "safe-missing": COMPAT_SAFE_MISSING}

    def __init__(self, hidden=COMPAT_HIDDEN, safe_missing=COMPAT_SAFE_MISSING):
        self.hidden = frozenset(hidden)
        self.safe_missing = frozenset(safe_missing)

    @property
    def spec(self) -> str:
        def ids(values):
            return ";".join(_id_name(i) for i in sorted(values))
        return f"{self.name}:hidden={ids(self.hidden)},safe-missing={ids(self.safe_missing)}"


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
        return coproc_of(rid) == KVM_REG_ARM_FW


REGISTRY: dict[str, type[Vmm]] = {
    cls.name: cls for cls in
    (Qemu, QemuTolerant, QemuCompat, Firecracker, CloudHypervisor, Crosvm, ZeroUnknown)
}


def _id_name(rid: int) -> str:
    from hcsim.model.regs import reg_name
    return reg_name(rid).removeprefix("KVM_REG_ARM_")


def _names() -> dict[str, int]:
    from hcsim.model.reglists import _FW_NAMES, _NAMES, sysreg_name
    out = {name: rid for rid, name in _FW_NAMES.items()}
    for (op0, op1, crn, crm, op2) in _NAMES:
        rid = (0x6030000000130000 | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2)
        out[sysreg_name(rid)] = rid
    return out


def parse_ids(text: str, what: str) -> frozenset[int]:
    """``ID;ID;...``: hex ids (``0x603000000013c103``) or kernel names
    (``TCR2_EL1``, ``VENDOR_HYP_BMAP_2``); empty for none."""
    out = set()
    for item in (t.strip() for t in text.split(";")):
        if not item:
            continue
        if item.lower().startswith("0x"):
            try:
                rid = int(item, 16)
            except ValueError:
                rid = -1
            if not 0 <= rid < 1 << 64 or rid >> 56 != 0x60:
                raise InputError(f"{what}: {item!r} is not a KVM_REG_ARM64 register id")
        else:
            rid = _names().get(item.removeprefix("KVM_REG_ARM_"))
            if rid is None:
                raise InputError(f"{what}: unknown register {item!r} "
                                 "(a 0x id or a kernel name such as TCR2_EL1)")
        out.add(rid)
    return frozenset(out)


def parse(name: str) -> Vmm:
    """A VMM policy by name, ``NAME[:k=v,...]`` (``qemu-compat:hidden=...``)."""
    base, _, params = name.partition(":")
    if base not in REGISTRY:
        raise InputError(f"unknown VMM {base!r} (known: {', '.join(REGISTRY)})")
    cls = REGISTRY[base]
    if not params:
        return cls()
    known = getattr(cls, "params", {})
    if not known:
        raise InputError(f"VMM {base!r} takes no parameters, got {params!r}")
    kwargs = {}
    for item in params.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in known:
            raise InputError(f"VMM {base!r}: unknown parameter {item!r} "
                             f"(known: {', '.join(known)})")
        kwargs[key.replace("-", "_")] = parse_ids(value, f"VMM {base!r} {key}")
    return cls(**kwargs)
