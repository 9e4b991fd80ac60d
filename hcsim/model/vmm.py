"""VMM save/restore policies, written only against the :mod:`hcsim.model.kvm` API.

Each policy is a small class: which registers it saves, which sizes it can
handle, its wire cost per register, and how it writes the stream on the
destination (FACTS.md section 5, DESIGN.md section 3).  The last two are
data, a :class:`RestoreRule`, that the one generic :meth:`Vmm.restore`
reads and the vectorised engine reads too; a failed restore raises
:class:`Refused` with a typed :class:`Cause`.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np

from hcsim.errors import InputError
from hcsim.model.kvm import VCPU, KvmError
from hcsim.model.regs import is_feature, width_of

#: One vCPU's saved registers: (id, value) in the order the VMM saved them.
Stream = list[list[tuple[int, int]]]

#: Kinds of :class:`Cause`.
CAUSES = ("count", "unknown", "errno", "size")


@dataclass(frozen=True)
class Cause:
    """Why a migration failed loudly, as data; ``str()`` is the text outputs show.

    ``kind``:

    * ``count``: QEMU's count check (``cpreg_vmstate_array_len``): ``sent``
      incoming registers, ``ours`` on the destination;
    * ``unknown``: QEMU's sorted walk met an incoming id ``reg`` that the
      destination does not list, before its last id;
    * ``errno``: ``KVM_SET_ONE_REG`` of ``reg`` failed with ``errno``
      (``"EINVAL"``...);
    * ``size``: the VMM ``vmm`` cannot handle ``reg`` (its width) on the
      ``side`` (``"source"`` or ``"destination"``): the pair is unsupported.

    ``name`` is the register's name as the reporting kernel spells it
    (:meth:`hcsim.model.kvm.Kernel.reg_name`).
    """

    kind: str
    reg: int | None = None
    name: str = ""
    errno: str = ""
    sent: int = 0
    ours: int = 0
    vmm: str = ""
    side: str = ""

    def __post_init__(self):
        if self.kind not in CAUSES:
            raise ValueError(f"unknown cause kind {self.kind!r} (known: {', '.join(CAUSES)})")

    def __str__(self) -> str:
        if self.kind == "count":
            return f"count {self.sent} > {self.ours} (cpreg_vmstate_array_len)"
        if self.kind == "unknown":
            return f"unknown {self.name} in stream"
        if self.kind == "errno":
            return f"{self.errno} on {self.name}"
        return f"{self.vmm} cannot handle {self.name} on the {self.side}"


class Refused(Exception):
    """The restore failed loudly; the VMM aborts the migration."""

    def __init__(self, cause: Cause):
        super().__init__(str(cause))
        self.cause = cause

    @property
    def detail(self) -> str:
        """The cause as text."""
        return str(self.cause)


def _every(rid: int) -> bool:
    return True


def _not_feature(rid: int) -> bool:
    return not is_feature(rid)


#: How a VMM writes the destination.
WRITE_BACKS = ("snapshot", "whole-list")


@dataclass(frozen=True)
class RestoreRule:
    """How a VMM saves and restores registers, as data the spec and the engine read.

    * ``saves``: which registers it saves (and so restores), by id;
    * ``write_back``: ``snapshot`` writes only the incoming registers, in
      stream order; ``whole-list`` (QEMU's ``write_list_to_kvmstate``) reads
      every listed register at VM creation, overlays the incoming values it
      matched and writes back its whole list in ascending id order;

    and, for ``whole-list`` writers only, the steps of QEMU's
    ``cpu_post_load``, in order:

    * ``drop_zero_unknown_features``: an incoming feature register the
      destination lacks, whose value is 0, is dropped (``qemu-tolerant``);
    * ``tolerated``: incoming ids the destination may lack, dropped
      (``x-mig-safe-missing-regs``);
    * ``count_check``: more incoming registers than its own refuses
      (``cpreg_vmstate_array_len``);
    * the sorted walk: an unknown incoming id sorting before the
      destination's last id refuses; one after it is dropped when
      ``tail_drop``, else refuses too;
    * ``zero_absent_features``: feature registers absent from the stream
      are written 0 (``zero-unknown``).
    """

    saves: Callable[[int], bool] = _every
    write_back: str = "snapshot"
    count_check: bool = False
    tail_drop: bool = False
    zero_absent_features: bool = False
    drop_zero_unknown_features: bool = False
    tolerated: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self):
        if self.write_back not in WRITE_BACKS:
            raise ValueError(f"unknown write_back {self.write_back!r} "
                             f"(known: {', '.join(WRITE_BACKS)})")
        walk = (self.count_check, self.tail_drop, self.zero_absent_features,
                self.drop_zero_unknown_features, bool(self.tolerated))
        if self.write_back == "snapshot" and any(walk):
            raise ValueError("a snapshot writer has no count check, walk, zeroing or drops")

    def drops(self, rid: int, value: int) -> bool:
        """Is an incoming register the destination lacks dropped before the count check?"""
        return (rid in self.tolerated
                or (self.drop_zero_unknown_features and is_feature(rid) and value == 0))


#: QEMU's rule (``target/arm/kvm.c``, ``machine.c``).
QEMU_RULE = RestoreRule(write_back="whole-list", count_check=True, tail_drop=True)


class Vmm:
    """A save/restore policy: its :class:`RestoreRule`, widths and wire cost."""

    name: ClassVar[str]
    summary: ClassVar[str]
    widths: ClassVar[tuple[int, ...]] = (32, 64)
    rule: ClassVar[RestoreRule] = RestoreRule()

    def saves(self, rid: int) -> bool:
        """Does the VMM save (and so restore) this register?"""
        return self.rule.saves(rid)

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
        """Write the stream on the destination as :attr:`rule` says; :class:`Refused` if it fails."""
        rule = self.rule
        for cpu, incoming in zip(vcpus, stream):
            if rule.write_back == "snapshot":
                for rid, value in incoming:
                    _set(cpu, rid, value)
                continue
            ours = [rid for rid in cpu.get_reg_list() if self.saves(rid)]
            values = {rid: cpu.get_one_reg(rid) for rid in ours}
            incoming = [(rid, v) for rid, v in sorted(incoming)
                        if rid in values or not rule.drops(rid, v)]
            if rule.count_check and len(incoming) > len(ours):
                raise Refused(Cause("count", sent=len(incoming), ours=len(ours)))
            last = ours[-1] if ours else -1
            for rid, value in incoming:
                if rid in values:
                    values[rid] = value
                elif rid < last or not rule.tail_drop:
                    raise Refused(Cause("unknown", rid, cpu.vm.kernel.reg_name(rid)))
            if rule.zero_absent_features:
                sent = {rid for rid, _ in incoming}
                for rid in ours:
                    if is_feature(rid) and rid not in sent:
                        values[rid] = 0
            for rid in ours:
                _set(cpu, rid, values[rid])

    @property
    def key(self) -> tuple:
        """Identifies the policy's answers (its class and parameters)."""
        return type(self), repr(sorted(vars(self).items()))

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
        raise Refused(Cause("errno", rid, cpu.vm.kernel.reg_name(rid), errno=exc.name)) from None


class Qemu(Vmm):
    name = "qemu"
    summary = "sorted full list, count check, writes back whole list (16 B/reg)"
    rule = QEMU_RULE


class QemuTolerant(Vmm):
    name = "qemu-tolerant"
    summary = "qemu, dropping unknown feature registers whose value is 0"
    rule = RestoreRule(write_back="whole-list", count_check=True, tail_drop=True,
                       drop_zero_unknown_features=True)


class ZeroUnknown(Vmm):
    name = "zero-unknown"
    summary = "qemu, zeroing feature registers absent from the stream"
    rule = RestoreRule(write_back="whole-list", count_check=True, tail_drop=True,
                       zero_absent_features=True)


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
    rule = RestoreRule(saves=_not_feature)


class Facts(NamedTuple):
    """What a policy answers for each id of a list, as arrays (see :func:`facts`)."""

    saves: np.ndarray       # bool
    handles: np.ndarray     # bool
    sizes: np.ndarray       # wire bytes, int64


#: Answers per policy key and register id, and per policy key and id list.
_FACTS: dict[tuple, dict[int, tuple[bool, bool, int]]] = {}
_LISTS: dict[tuple, Facts] = {}


def facts(vmm: Vmm, ids: Sequence[int]) -> Facts:
    """``saves``, ``handles`` and ``wire_bytes`` of every id under ``vmm``, memoised.

    The three are pure functions of the policy and the id, asked of every
    register (never of a sample), and the same ids and lists recur from
    history to history (2048 of them under ``full-bitmap``), so each is
    computed once per policy.
    """
    ids = tuple(ids)
    key = (vmm.key, ids)
    hit = _LISTS.get(key)
    if hit is not None:
        return hit
    table = _FACTS.setdefault(vmm.key, {})
    rows = []
    for rid in ids:
        answer = table.get(rid)
        if answer is None:
            answer = table[rid] = (vmm.saves(rid), vmm.handles(rid), vmm.wire_bytes(rid))
        rows.append(answer)
    saves, handles, sizes = zip(*rows) if rows else ((), (), ())
    hit = Facts(np.array(saves, bool), np.array(handles, bool), np.array(sizes, np.int64))
    if len(_LISTS) >= 64:       # bounded: a sweep's histories make ever new lists
        _LISTS.pop(next(iter(_LISTS)))
    _LISTS[key] = hit
    return hit


REGISTRY: dict[str, type[Vmm]] = {
    cls.name: cls for cls in
    (Qemu, QemuTolerant, Firecracker, CloudHypervisor, Crosvm, ZeroUnknown)
}


def parse(name: str) -> Vmm:
    """A VMM policy by name."""
    if name not in REGISTRY:
        raise InputError(f"unknown VMM {name!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]()
