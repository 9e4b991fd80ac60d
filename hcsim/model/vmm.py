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
* ``qemu-tolerant`` (*hypothetical*: a review suggestion on the QEMU list,
  never implemented): as ``qemu``, but an incoming feature register the
  destination lacks, whose value is 0, is dropped before the count check.
* ``qemu-compat``: QEMU with Eric Auger's series (RFC 2025-09 to v10
  2026-04, "failed to load cpu:cpreg_vmstate_array_len"; docs/FACTS.md
  section 4; merged according to its author, not verified here): ``x-mig-hidden-regs`` ids are
  removed from the cpreg list (neither saved nor restored, whatever their
  value, so not configured either: :attr:`RestoreRule.hidden`); incoming
  ids in ``x-mig-safe-missing-regs`` that the destination lacks are ignored,
  in the count check too (:attr:`RestoreRule.tolerated`).  Parameters
  ``hidden=ID;ID`` and ``safe-missing=ID;ID`` (hex ids or kernel names),
  default the series' *example* compat (v4 patch 10/10, "[DO NOT UPSTREAM]
  Enforce compatibility with older kernels"): ``VENDOR_HYP_BMAP_2``
  hidden; ``TCR2_EL1``, ``PIRE0_EL1``, ``PIR_EL1`` safe-missing.
* ``zero-unknown`` (Oliver's wish): as ``qemu``, and every destination feature
  register absent from the stream is written 0.
* ``firecracker``, ``cloud-hypervisor``, ``crosvm``: write only the registers
  of their snapshot, in snapshot order; any error aborts; crosvm saves only
  class 0x14 (never the bitmaps, nor any other register).

The rules run over the whole list ``KVM_GET_REG_LIST`` returns (DESIGN.md
section 9): in the ``all`` view of a history with other-register data that
includes the system registers, so QEMU's count check and walk meet their
drift, and a snapshot writer gets ``-ENOENT`` writing one the destination
lacks.  Every refusal's :class:`Cause` carries a *blame*: the kinds of the
registers the failing check trips on, ``hypercall`` (firmware or feature
registers), ``other`` or ``both``.  The count check trips on every incoming
id the destination lacks; the walk on every unknown id sorting before the
destination's last; the writes on the register whose ``SET_ONE_REG`` fails
first (the spec stops there: QEMU writes the rest of its list before it
reports, which changes nothing for the outcome, and only hypercall registers
can fail its writes; a snapshot writer aborts), and for a snapshot writer
also on every later snapshot register the destination does not list (its
write would fail too).  The cause names the first of them.

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
from functools import cached_property
from typing import ClassVar, NamedTuple

import numpy as np

from hcsim.errors import InputError
from hcsim.model.kvm import VCPU, KvmError
from hcsim.model.regs import KVM_REG_ARM_FW, coproc_of, is_feature, width_of

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
    (:meth:`hcsim.model.kvm.Kernel.reg_name`); for ``count`` the first
    incoming register the destination lacks.  ``blame`` (``count``,
    ``unknown``, ``errno``): ``hypercall``, ``other`` or ``both``, the kinds
    of every register the failing check trips on (module docstring).
    """

    kind: str
    reg: int | None = None
    name: str = ""
    errno: str = ""
    sent: int = 0
    ours: int = 0
    vmm: str = ""
    side: str = ""
    blame: str = ""

    def __post_init__(self):
        if self.kind not in CAUSES:
            raise ValueError(f"unknown cause kind {self.kind!r} (known: {', '.join(CAUSES)})")

    def __str__(self) -> str:
        if self.kind == "count":
            # "count N > M" is hcsim's paraphrase of QEMU's "Invalid value N
            # expecting positive value <= M"; the words in parentheses are QEMU's
            text = f"count {self.sent} > {self.ours} (QEMU: failed to load cpu:cpreg_vmstate_array_len)"
            return text + (f"; {self.name} not on the destination" if self.name else "")
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


def _firmware_only(rid: int) -> bool:
    return coproc_of(rid) == KVM_REG_ARM_FW


#: Blame of a refusal (:attr:`Cause.blame`).
BLAMES = ("hypercall", "other", "both")


def is_hypercall(rid: int) -> bool:
    """A firmware (class 0x14) or feature (class 0x16) register."""
    return coproc_of(rid) == KVM_REG_ARM_FW or is_feature(rid)


def blame_of(ids) -> str:
    """``hypercall``, ``other`` or ``both``: the kinds of the registers ``ids``."""
    kinds = {is_hypercall(r) for r in ids}
    return "both" if len(kinds) == 2 else "hypercall" if True in kinds else "other"


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
      are written 0 (``zero-unknown``);

    and ``hidden``: ids left out of the list altogether, neither saved nor
    restored nor configured (``x-mig-hidden-regs``; whole-list writers).
    """

    saves: Callable[[int], bool] = _every
    write_back: str = "snapshot"
    count_check: bool = False
    tail_drop: bool = False
    zero_absent_features: bool = False
    drop_zero_unknown_features: bool = False
    tolerated: frozenset[int] = field(default_factory=frozenset)
    hidden: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self):
        if self.write_back not in WRITE_BACKS:
            raise ValueError(f"unknown write_back {self.write_back!r} "
                             f"(known: {', '.join(WRITE_BACKS)})")
        walk = (self.count_check, self.tail_drop, self.zero_absent_features,
                self.drop_zero_unknown_features, bool(self.tolerated), bool(self.hidden))
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
        return self.rule.saves(rid) and rid not in self.rule.hidden

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
            name = cpu.vm.kernel.reg_name
            if rule.write_back == "snapshot":
                _write_snapshot(cpu, incoming)  # the first error aborts
                continue
            ours = [rid for rid in cpu.get_reg_list() if self.saves(rid)]
            values = {rid: cpu.get_one_reg(rid) for rid in ours}
            incoming = [(rid, v) for rid, v in sorted(incoming)
                        if rid in values or not rule.drops(rid, v)]
            lacking = [rid for rid, _ in incoming if rid not in values]
            if rule.count_check and len(incoming) > len(ours):
                raise Refused(Cause("count", lacking[0], name(lacking[0]), sent=len(incoming),
                                    ours=len(ours), blame=blame_of(lacking)))
            last = ours[-1] if ours else -1
            early = [rid for rid in lacking if rid < last or not rule.tail_drop]
            if early:
                raise Refused(Cause("unknown", early[0], name(early[0]), blame=blame_of(early)))
            for rid, value in incoming:
                if rid in values:
                    values[rid] = value
            if rule.zero_absent_features:
                sent = {rid for rid, _ in incoming}
                for rid in ours:
                    if is_feature(rid) and rid not in sent:
                        values[rid] = 0
            for rid in ours:
                _set(cpu, rid, values[rid])

    @cached_property
    def key(self) -> tuple:
        """Identifies the policy's answers (its class and parameters; a policy's
        parameters are set when it is made, so the key is computed once)."""
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
        raise Refused(Cause("errno", rid, cpu.vm.kernel.reg_name(rid), errno=exc.name,
                            blame=blame_of([rid]))) from None


def _write_snapshot(cpu: VCPU, regs: list[tuple[int, int]]) -> None:
    """``SET_ONE_REG`` every snapshot register in order; the first error
    aborts, blaming it and every later register the destination does not list."""
    for k, (rid, value) in enumerate(regs):
        try:
            cpu.set_one_reg(rid, value)
        except KvmError as exc:
            listed = set(cpu.vm.kernel.reg_list(cpu.features)[0])
            later = [r for r, _ in regs[k + 1:] if r not in listed]
            raise Refused(Cause("errno", rid, cpu.vm.kernel.reg_name(rid), errno=exc.name,
                                blame=blame_of([rid, *later]))) from None


class Qemu(Vmm):
    name = "qemu"
    summary = "sorted full list, count check, writes back whole list (16 B/reg)"
    rule = QEMU_RULE


class QemuTolerant(Vmm):
    name = "qemu-tolerant"
    summary = ("hypothetical (a review suggestion, never implemented): qemu, "
               "dropping unknown feature registers whose value is 0")
    rule = RestoreRule(write_back="whole-list", count_check=True, tail_drop=True,
                       drop_zero_unknown_features=True)


#: ``qemu-compat`` defaults: the series' example compat (v4 patch 10/10, marked
#: "[DO NOT UPSTREAM]" by its author; the compat v4 proposes upstream lists only
#: AArch32 DBGDTRTX as safe-missing).
VENDOR_HYP_BMAP_2 = 0x6030000000160003
TCR2_EL1, PIRE0_EL1, PIR_EL1 = 0x603000000013C103, 0x603000000013C512, 0x603000000013C513
COMPAT_HIDDEN = (VENDOR_HYP_BMAP_2,)
COMPAT_SAFE_MISSING = (TCR2_EL1, PIRE0_EL1, PIR_EL1)


class QemuCompat(Vmm):
    name = "qemu-compat"
    summary = ("qemu + Eric Auger's series (2025-26): x-mig-hidden-regs, "
               "x-mig-safe-missing-regs")
    params = {"hidden": COMPAT_HIDDEN, "safe-missing": COMPAT_SAFE_MISSING}

    def __init__(self, hidden=COMPAT_HIDDEN, safe_missing=COMPAT_SAFE_MISSING):
        self.rule = RestoreRule(write_back="whole-list", count_check=True, tail_drop=True,
                                tolerated=frozenset(safe_missing), hidden=frozenset(hidden))

    @property
    def key(self) -> tuple:
        """Its class and its two id lists (the rule holds both; hashed, not printed)."""
        return type(self), self.rule

    @property
    def spec(self) -> str:
        def ids(values):
            return ";".join(id_name(i) for i in sorted(values))
        return (f"{self.name}:hidden={ids(self.rule.hidden)},"
                f"safe-missing={ids(self.rule.tolerated)}")


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
    rule = RestoreRule(saves=_firmware_only)


class Facts(NamedTuple):
    """What a policy answers for each id of a list, as arrays (see :func:`facts`)."""

    saves: np.ndarray       # bool
    handles: np.ndarray     # bool
    sizes: np.ndarray       # wire bytes, int64


class _Answers:
    """One policy's answers, as sorted arrays of the ids asked so far."""

    __slots__ = ("ids", "saves", "handles", "sizes")

    def __init__(self):
        self.ids = np.zeros(0, np.uint64)
        self.saves = np.zeros(0, bool)
        self.handles = np.zeros(0, bool)
        self.sizes = np.zeros(0, np.int64)

    def learn(self, vmm: Vmm, new: np.ndarray) -> None:
        """Ask the policy about ``new`` (sorted, distinct, none known yet)."""
        rows = [(vmm.saves(rid), vmm.handles(rid), vmm.wire_bytes(rid)) for rid in new.tolist()]
        saves, handles, sizes = (np.array(col, dt) for col, dt in
                                 zip(zip(*rows), (bool, bool, np.int64)))
        at = np.searchsorted(self.ids, new)
        self.ids = np.insert(self.ids, at, new)
        self.saves = np.insert(self.saves, at, saves)
        self.handles = np.insert(self.handles, at, handles)
        self.sizes = np.insert(self.sizes, at, sizes)


#: Answers per policy key (every id ever asked; ids are few: the hypercall
#: registers of every layout and the system registers of the histories).
_ANSWERS: dict[tuple, _Answers] = {}


def facts(vmm: Vmm, ids: Sequence[int] | np.ndarray) -> Facts:
    """``saves``, ``handles`` and ``wire_bytes`` of every id under ``vmm``, memoised.

    The three are pure functions of the policy and the id, asked of every
    register (never of a sample); each is computed once per policy and id
    (the same ids recur from history to history: 2048 of them under
    ``full-bitmap``), and a list is answered by one sorted lookup.  The
    answers to the lists asked most recently are kept whole (a layout's
    registers recur from history to history), as read-only arrays.
    """
    arr = np.asarray(ids, np.uint64).reshape(-1)
    key = vmm.key
    lkey = (key, arr.tobytes())
    hit = _RECENT.get(lkey)
    if hit is not None:
        return hit
    table = _ANSWERS.get(key)
    if table is None:
        table = _ANSWERS[key] = _Answers()
    at = np.searchsorted(table.ids, arr)
    known = at < len(table.ids)
    known[known] = table.ids[at[known]] == arr[known]
    if not known.all():
        table.learn(vmm, np.unique(arr[~known]))
        at = np.searchsorted(table.ids, arr)
    out = Facts(table.saves[at], table.handles[at], table.sizes[at])
    for a in out:
        a.flags.writeable = False
    if len(_RECENT) >= _RECENT_LISTS:
        del _RECENT[next(iter(_RECENT))]        # the oldest
    _RECENT[lkey] = out
    return out


#: Lists whose answers :func:`facts` keeps whole (a sweep's layouts ask a few
#: lists per policy again and again).
_RECENT_LISTS = 256
_RECENT: dict[tuple, Facts] = {}


REGISTRY: dict[str, type[Vmm]] = {
    cls.name: cls for cls in
    (Qemu, QemuTolerant, QemuCompat, Firecracker, CloudHypervisor, Crosvm, ZeroUnknown)
}


def id_name(rid: int) -> str:
    """A register id as the parameters spell it: its kernel name."""
    from hcsim.model.regs import reg_name
    return reg_name(rid).removeprefix("KVM_REG_ARM_")


def _names() -> dict[str, int]:
    from hcsim.model.reglists import _FW_NAMES, _NAMES, sysreg_name
    out = {name: rid for rid, name in _FW_NAMES.items()}
    for (op0, op1, crn, crm, op2) in _NAMES:
        rid = 0x6030000000130000 | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
        out[sysreg_name(rid)] = rid
    return out


def parse_ids(text: str, what: str) -> frozenset[int]:
    """``ID;ID;...``: hex ids (``0x603000000013c103``) or kernel names
    (``TCR2_EL1``, ``VENDOR_HYP_BMAP_2``); empty for none.  :class:`InputError`
    (one line) on anything else."""
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
    """A VMM policy by name, ``NAME[:k=v,...]`` (``qemu-compat:hidden=ID;ID``)."""
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
