"""Replay a real-kernel probe file against the scalar model (``probe-replay``).

A probe file (``data/kernel-probe/<release>[.<variant>].jsonl``, format in
``data/kernel-probe/README.md``) records what a real KVM/arm64 kernel
answered, one JSON object per line.  :func:`replay` makes the same calls,
in the same order, on :class:`hcsim.model.kvm.Kernel` (strategy ``upstream``) of
the history's release or ``[[stable]]`` kernel with the probe's host CPU
profile, and compares every answer: return value and errno, values read,
read-backs after a SET, the class 0x14/0x16 register list, the bitmap bit
scan and the NULL-address calls.

Records about things the model does not have (``start``, ``cmdline``,
``caps``, ``api_version``, ``open_kvm``, ``preferred_target``,
``reg_list_probe``, ``reg_list_chunk``, ``fw_first_index``, ``memslot``,
``done``) are skipped and not counted.  Of ``reg_list`` the counts of
classes 0x14 and 0x16 are compared; when the history has other-register
data (``reglists``, DESIGN.md section 9) the replay runs in the ``all``
view and also compares the count of every other class (0x11 DEMUX, 0x13
SYSREG, ...), the total (the modelled classes plus the record's own CORE
and SVE counts, which the model does not have), and the listed ids: the
``reg_list_chunk`` records after a ``reg_list`` record give the kernel's
whole list, and every id of it outside CORE and SVE must be the model's
list for that kernel, host and vCPU features.  The vCPU features come from
the ``vcpu_init`` record's ``features0`` (bit 3, ``KVM_ARM_VCPU_PMU_V3``:
``pmu``; other feature bits are named ``feature<N>``).

Which vCPU makes a call.  The records name the vCPU only when it is created
or initialised, so the replay follows the probe's call sequence
(``tools/kvm-probe/README.md``):

* a record's own ``idx`` field, when it has one, wins;
* ``run`` and ``vcpu_reinit``: vCPU 0 (the probe runs vCPU 0 of every VM,
  the uninitialised one of VM ``U`` included, and re-initialises the vCPU
  that ran);
* ``get``, ``set``, ``bitmap_bitscan``, ``badaddr``, ``reg_list``,
  ``fw_reg_ids``: the vCPU a ``vcpuN`` in the test name names
  (``cross_read_vcpu1``, ``vcpu1_same_after_vcpu0_ran``: the first one),
  else the vCPU created last in that VM (vCPU 5 of VM ``C`` for
  ``uninit_vcpu_get``, vCPU 1 of VM ``A`` for ``post_run_new_vcpu_get``).

Unrecorded calls of the shared probe.  ``bitmap_bitscan`` summarises one SET
per bit outside the reset value; the replay makes them, and puts the
recorded default back after each accepted one, as the probe did (the
following ``after_restore`` GET reads the default).  The shared probe also
put the default back before its ``after_restore`` GET without recording the
SET; our own probe records it as a ``set`` with test ``restore``.  When an
``after_restore`` GET is not preceded by a ``restore`` SET of the same
register, the replay makes that SET itself, with the value the register's
bit scan started from (its ``default``; else what the VM's ``default`` GET
read).

Mismatches are reported in the kernel's vocabulary, *expected* being what
the real kernel answered and *read* what the model answers::

    line 57 set STD_BMAP 0x0 (bitmap_write_zero): expected ret 0, read EINVAL
    line 30 get STD_HYP_BMAP (default): expected 0x1, read 0x3
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hcsim import files, limits
from hcsim.errors import InputError
from hcsim.model import history as history_mod
from hcsim.model.history import History
from hcsim.model.kvm import VCPU, VM, Kernel, KvmError
from hcsim.model.regs import (
    KVM_REG_ARM64_SVE,
    KVM_REG_ARM_CORE,
    KVM_REG_ARM_FW,
    KVM_REG_ARM_FW_FEAT_BMAP,
    coproc_of,
    short_name,
)
from hcsim.model.strategies import parse as parse_strategy

#: Record types that say nothing the model can answer: skipped, not counted.
SKIPPED = frozenset({"start", "cmdline", "caps", "api_version", "open_kvm",
                     "preferred_target", "reg_list_probe", "reg_list_chunk",
                     "fw_first_index", "memslot", "done"})

#: Record types replayed against the model, with their required fields.
REPLAYED = {
    "create_vm": ("vm", "ret"),
    "create_vcpu": ("vm", "idx", "ret"),
    "vcpu_init": ("vm", "idx", "psci_0_2", "ret"),
    "vcpu_reinit": ("vm", "ret"),
    "reg_list": ("vm", "ret", "by_coproc"),
    "fw_reg_ids": ("vm", "ids"),
    "get": ("vm", "test", "id", "ret"),
    "set": ("vm", "test", "id", "val", "ret"),
    "bitmap_bitscan": ("vm", "id", "default", "extra_bits_accepted",
                       "extra_bits_rejected", "reject_errnos"),
    "badaddr": ("vm", "id", "get_ret", "set_ret"),
    "run": ("vm", "label", "ret"),
}

#: The type of every field a replayed record may have (checked when read, so
#: that a bad value is one line naming the file, the line and the field).
#: ``u64``: an integer or a hex string in 0..2**64-1; ``int``: a JSON integer
#: (a return value: -2**31..2**31-1); ``flag``: 0/1 or true/false.
FIELDS = {
    "t": "str", "vm": "str", "test": "str", "label": "str", "phase": "str",
    "errno": "str", "readback_errno": "str", "get_errno": "str", "set_errno": "str",
    "reject_errnos": "str",
    "idx": "index", "ret": "int", "get_ret": "int", "set_ret": "int", "count": "index",
    "psci_0_2": "flag", "immediate_exit": "flag",
    "id": "u64", "val": "u64", "readback": "u64", "default": "u64",
    "extra_bits_accepted": "u64", "extra_bits_rejected": "u64",
    "ids": "u64list", "by_coproc": "counts",
}

#: Classes whose registers the model knows (``reg_list`` counts compared).
MODELLED_CLASSES = (KVM_REG_ARM_FW, KVM_REG_ARM_FW_FEAT_BMAP)

#: Classes QEMU leaves out of its cpreg list, which the model does not have.
UNMODELLED_CLASSES = (KVM_REG_ARM_CORE, KVM_REG_ARM64_SVE)

#: ``KVM_ARM_VCPU_INIT`` feature bits (``features[0]``) that choose other
#: registers; PSCI 0.2 (bit 2) is ``psci_0_2``.
FEATURE_BITS = {3: "pmu"}

_CPU_SUFFIX = re.compile(r"\.cpu-([A-Za-z0-9_.-]+?)\.jsonl$")
_VCPU_IN_TEST = re.compile(r"vcpu(\d+)")


@dataclass(frozen=True)
class Mismatch:
    """One record the model answers differently from the real kernel."""

    line: int
    call: str                  # e.g. "set STD_BMAP 0x0 (bitmap_write_zero)"
    problems: tuple[str, ...]  # e.g. ("expected ret 0, read EINVAL",)

    def __str__(self) -> str:
        return f"line {self.line} {self.call}: {'; '.join(self.problems)}"


@dataclass
class Replay:
    """Result of replaying one probe file."""

    file: str
    history: str
    kernel: str                # release or stable name replayed
    cpu: str
    total: int = 0             # records compared
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: int = 0           # records not about the model

    @property
    def matched(self) -> int:
        return self.total - len(self.mismatches)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        return (f"{self.matched}/{self.total} records match "
                f"({Path(self.file).name}: kernel {self.kernel}, cpu {self.cpu}, "
                f"history {self.history})")

    def text(self) -> str:
        return "\n".join([self.summary(), *map(str, self.mismatches)]) + "\n"

    def as_json(self) -> str:
        doc = {"file": self.file, "history": self.history, "kernel": self.kernel,
               "cpu": self.cpu, "matched": self.matched, "total": self.total,
               "skipped": self.skipped,
               "mismatches": [{**asdict(m), "problems": list(m.problems),
                               "message": str(m)} for m in self.mismatches]}
        return json.dumps(doc, indent=2) + "\n"


# -- reading -------------------------------------------------------------------

def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """``(line number, record)`` of a probe file; :class:`InputError` if it is not one."""
    path = Path(path)
    text = files.read_text(path, "probe")
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = files.loads_json(line, f"{path}: line {n}")
        except InputError as exc:
            if ": not JSON (" not in str(exc):
                raise           # too deep, not Unicode: the precise reason
            raise InputError(f"{path}: line {n}: not a JSON object "
                             "(a probe file has one JSON record per line)") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("t"), str):
            raise InputError(f"{path}: line {n}: not a probe record (no \"t\" field)")
        if rec["t"] not in SKIPPED and rec["t"] not in REPLAYED:
            raise InputError(f"{path}: line {n}: unknown record type {rec['t']!r}")
        missing = [k for k in REPLAYED.get(rec["t"], ()) if k not in rec]
        if missing:
            raise InputError(f"{path}: line {n}: {rec['t']} record without "
                             f"{missing[0]!r}")
        if rec["t"] in REPLAYED:
            rec = _typed(rec, f"{path}: line {n}")
        elif rec["t"] == "start" and not isinstance(rec.get("release", ""), str):
            raise InputError(f"{path}: line {n}: start: release must be a string, "
                             f"got {rec['release']!r}")
        records.append((n, rec))
    if not records or records[0][1]["t"] != "start":
        raise InputError(f"{path}: not a probe file (it must begin with a "
                         "\"start\" record)")
    return records


def _u64(value, where: str, key: str) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and 0 < len(value) <= 18:
        try:
            number = int(value, 16)
        except ValueError:
            pass
    if number is None or not 0 <= number <= limits.U64_MAX:
        raise InputError(f"{where}: {key} must be a 64-bit number (an integer or hex "
                         f"string), got {value!r}")
    return number


def _typed(rec: dict, where: str) -> dict:
    """``rec`` with every known field checked and numbers converted (module FIELDS)."""
    out = dict(rec)
    where = f"{where}: {rec['t']}"
    for key, value in rec.items():
        kind = FIELDS.get(key)
        if kind is None:
            continue
        bad = False
        if kind == "str":
            bad = not isinstance(value, str)
        elif kind in ("int", "index"):
            low, high = ((-(1 << 31), (1 << 31) - 1) if kind == "int"
                         else (0, (1 << 32) - 1))
            bad = (isinstance(value, bool) or not isinstance(value, int)
                   or not low <= value <= high)
        elif kind == "flag":
            bad = value not in (0, 1) or not isinstance(value, (int, bool))
        elif kind == "u64":
            out[key] = f"0x{_u64(value, where, key):x}"
        elif kind == "u64list":
            if not isinstance(value, list):
                bad = True
            else:
                out[key] = [f"0x{_u64(v, where, key):x}" for v in value]
        elif kind == "counts":
            bad = (not isinstance(value, dict)
                   or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                          for v in value.values()))
        if bad:
            raise InputError(f"{where}: field {key!r} has the wrong type or range: "
                             f"{value!r} (expected {kind})")
    return out


def cpu_of(path: str | Path) -> str:
    """The host CPU model a file name names (``.cpu-<model>``), else ``max``."""
    m = _CPU_SUFFIX.search(Path(path).name)
    return m.group(1) if m else history_mod.DEFAULT_HOST


# -- replaying -----------------------------------------------------------------

def _num(rec: dict, key: str, line: int) -> int:
    value = rec[key]
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise InputError(f"line {line}: {key} {value!r} is not a number") from None


def _outcome(ret: int, err: str) -> str:
    return "ret 0" if ret == 0 else (err or "ret -1")


def _call(fn, *args, **kwargs) -> tuple[str, object]:
    """Run a model call: ("ret 0", result) or (errno name, None)."""
    try:
        return "ret 0", fn(*args, **kwargs)
    except KvmError as exc:
        return exc.name, None


class _Replayer:
    def __init__(self, kernel: Kernel, chunks: dict[int, list[int]] | None = None):
        self.kernel = kernel
        self.whole = kernel.history.whole
        self.chunks = chunks or {}        # reg_list line -> the kernel's whole list
        self.vms: dict[str, VM] = {}
        self.last_created: dict[str, VCPU] = {}
        self.defaults: dict[tuple[str, int], int] = {}   # the probe's defaults
        self.restored: set[tuple[str, int]] = set()      # explicit `restore` SETs

    # vCPU selection (see the module docstring)
    def vm(self, rec: dict, line: int) -> VM:
        try:
            return self.vms[rec["vm"]]
        except KeyError:
            raise InputError(f"line {line}: VM {rec['vm']!r} was not created") from None

    def vcpu(self, rec: dict, line: int, default: int | None = None) -> VCPU:
        vm = self.vm(rec, line)
        if "idx" in rec:
            index = _num(rec, "idx", line)
        elif default is not None:
            index = default
        else:
            m = _VCPU_IN_TEST.search(rec.get("test", ""))
            if m is None:
                if rec["vm"] not in self.last_created:
                    raise InputError(f"line {line}: VM {rec['vm']!r} has no vCPU")
                return self.last_created[rec["vm"]]
            index = int(m.group(1))
        cpu = vm.vcpu_by_id(index)
        if cpu is None:
            raise InputError(f"line {line}: vCPU {index} of VM {rec['vm']!r} "
                             "was not created")
        return cpu

    def replay(self, line: int, rec: dict) -> Mismatch | None:
        handler = getattr(self, "_" + rec["t"])
        call, problems = handler(line, rec)
        return Mismatch(line, call, tuple(problems)) if problems else None

    # one method per record type: (call description, problems)
    def _create_vm(self, line, rec):
        self.vms[rec["vm"]] = self.kernel.create_vm()
        return f"create_vm {rec['vm']}", _compare(rec, "ret 0")

    def _create_vcpu(self, line, rec):
        vm = self.vm(rec, line)
        got, cpu = _call(vm.create_vcpu, _num(rec, "idx", line))
        if cpu is not None:
            self.last_created[rec["vm"]] = cpu
        return f"create_vcpu {rec['vm']} {rec['idx']}", _compare(rec, got)

    def _vcpu_init(self, line, rec):
        cpu = self.vcpu(rec, line)
        psci = bool(rec["psci_0_2"])
        features = None
        if self.whole and "features0" in rec:
            bits = _num(rec, "features0", line)
            features = frozenset(FEATURE_BITS.get(b, f"feature{b}")
                                 for b in range(64) if bits >> b & 1 and b != 2)
        got, _ = _call(cpu.init, psci_0_2=psci, features=features)
        what = "with" if psci else "without"
        return (f"vcpu_init {rec['vm']} {cpu.index} ({what} PSCI 0.2)",
                _compare(rec, got))

    def _vcpu_reinit(self, line, rec):
        cpu = self.vcpu(rec, line, default=0)
        got, _ = _call(cpu.init, psci_0_2=cpu.psci_0_2)
        return f"vcpu_reinit {rec['vm']} {cpu.index}", _compare(rec, got)

    def _run(self, line, rec):
        cpu = self.vcpu(rec, line, default=0)
        immediate = rec["label"] == "immediate_exit" or bool(rec.get("immediate_exit"))
        got, _ = _call(cpu.run, immediate_exit=immediate)
        return f"run {rec['vm']} {cpu.index} ({rec['label']})", _compare(rec, got)

    def _reg_list(self, line, rec):
        cpu = self.vcpu(rec, line)
        got, ids = _call(cpu.get_reg_list)
        problems = _compare(rec, got)
        if ids is not None and rec["ret"] == 0:
            counts = {f"0x{c:04x}": 0 for c in MODELLED_CLASSES}
            if self.whole:     # every class but CORE and SVE is modelled
                unmodelled = {f"0x{c:04x}" for c in UNMODELLED_CLASSES}
                counts.update({k: 0 for k in rec["by_coproc"] if k not in unmodelled})
            for rid in ids:
                key = f"0x{coproc_of(rid):04x}"
                counts[key] = counts.get(key, 0) + 1
            for key, n in sorted(counts.items()):
                want = rec["by_coproc"].get(key, 0)
                if want != n:
                    problems.append(f"class {key}: expected {want} registers, read {n}")
            if self.whole and "total" in rec:
                total = len(ids) + sum(rec["by_coproc"].get(f"0x{c:04x}", 0)
                                       for c in UNMODELLED_CLASSES)
                if total != rec["total"]:
                    problems.append(f"total: expected {rec['total']} registers, read {total}")
            listed = self.chunks.get(line)
            if self.whole and listed is not None:
                real = {r for r in listed if coproc_of(r) not in UNMODELLED_CLASSES}
                model = set(ids)
                missing = sorted(real - model)
                extra = sorted(model - real)
                if missing:
                    problems.append(f"{len(missing)} listed ids not modelled: "
                                    + ", ".join(short_name(r) for r in missing[:5])
                                    + (" ..." if len(missing) > 5 else ""))
                if extra:
                    problems.append(f"{len(extra)} modelled ids not listed: "
                                    + ", ".join(short_name(r) for r in extra[:5])
                                    + (" ..." if len(extra) > 5 else ""))
        return f"reg_list {rec['vm']}", problems

    def _fw_reg_ids(self, line, rec):
        cpu = self.vcpu(rec, line)
        got, ids = _call(cpu.get_reg_list)
        if ids is None:
            return f"fw_reg_ids {rec['vm']}", [f"expected a register list, read {got}"]
        ids = [r for r in ids if coproc_of(r) in MODELLED_CLASSES]
        want = [int(i, 16) for i in rec["ids"]]
        problems = [f"expected {short_name(r)} listed, read not listed"
                    for r in want if r not in ids]
        problems += [f"expected {short_name(r)} not listed, read listed"
                     for r in ids if r not in want]
        if not problems and want != ids:
            problems.append("expected order " + ", ".join(map(short_name, want))
                            + "; read " + ", ".join(map(short_name, ids)))
        if "count" in rec and rec["count"] != len(want):
            raise InputError(f"line {line}: fw_reg_ids count {rec['count']} but "
                             f"{len(want)} ids")
        return f"fw_reg_ids {rec['vm']}", problems

    def _get(self, line, rec):
        cpu = self.vcpu(rec, line)
        rid = _num(rec, "id", line)
        key = (rec["vm"], rid)
        problems = []
        if rec["test"] == "after_restore" and key not in self.restored:
            # The shared probe's unrecorded restoring SET (module docstring).
            value = self.defaults.get(key)
            if value is not None:
                got, _ = _call(cpu.set_one_reg, rid, value)
                if got != "ret 0":
                    problems.append(f"unrecorded restoring SET of 0x{value:x}: "
                                    f"expected ret 0, read {got}")
        self.restored.discard(key)
        got, value = _call(cpu.get_one_reg, rid)
        problems += _compare(rec, got)
        if rec["ret"] == 0 and value is not None and "val" in rec:
            want = _num(rec, "val", line)
            if want != value:
                problems.append(f"expected 0x{want:x}, read 0x{value:x}")
        if rec["test"] == "default" and rec["ret"] == 0 and "val" in rec:
            self.defaults.setdefault(key, _num(rec, "val", line))
        return f"get {short_name(rid)} ({rec['test']})", problems

    def _set(self, line, rec):
        cpu = self.vcpu(rec, line)
        rid, val = _num(rec, "id", line), _num(rec, "val", line)
        got, _ = _call(cpu.set_one_reg, rid, val)
        problems = _compare(rec, got)
        key = (rec["vm"], rid)
        if rec["test"] == "restore":
            self.restored.add(key)
        else:
            self.restored.discard(key)
        if "readback" in rec or "readback_errno" in rec:
            rgot, value = _call(cpu.get_one_reg, rid)
            rerr = rec.get("readback_errno", "")
            rwant = _outcome(-1 if rerr else 0, rerr)
            if rwant != rgot:
                problems.append(f"readback expected {rwant}, read {rgot}")
            elif not rerr and value is not None and "readback" in rec:
                want = _num(rec, "readback", line)
                if want != value:
                    problems.append(f"readback expected 0x{want:x}, read 0x{value:x}")
        return f"set {short_name(rid)} 0x{val:x} ({rec['test']})", problems

    def _bitmap_bitscan(self, line, rec):
        cpu = self.vcpu(rec, line)
        rid, base = _num(rec, "id", line), _num(rec, "default", line)
        self.defaults[(rec["vm"], rid)] = base
        accepted = rejected = 0
        errnos: set[str] = set()
        for bit in range(64):
            if base >> bit & 1:
                continue
            got, _ = _call(cpu.set_one_reg, rid, base | 1 << bit)
            if got == "ret 0":
                accepted |= 1 << bit
                _call(cpu.set_one_reg, rid, base)   # the probe puts the default back
            else:
                rejected |= 1 << bit
                errnos.add(got)
        problems = []
        for what, key, value in (("accepted", "extra_bits_accepted", accepted),
                                 ("rejected", "extra_bits_rejected", rejected)):
            want = _num(rec, key, line)
            if want != value:
                problems.append(f"bits {what}: expected 0x{want:x}, read 0x{value:x}")
        want_err = {e for e in rec["reject_errnos"].split(",") if e}
        if want_err != errnos:
            problems.append(f"reject errnos: expected {','.join(sorted(want_err)) or '-'}, "
                            f"read {','.join(sorted(errnos)) or '-'}")
        return f"bitmap_bitscan {short_name(rid)}", problems

    def _badaddr(self, line, rec):
        cpu = self.vcpu(rec, line)
        rid = _num(rec, "id", line)
        problems = []
        for what, fn, args in (("GET", cpu.get_one_reg, (rid,)),
                               ("SET", cpu.set_one_reg, (rid, 0))):
            key = what.lower()
            got, _ = _call(fn, *args, bad_address=True)
            want = _outcome(rec[f"{key}_ret"], rec.get(f"{key}_errno", ""))
            if want != got:
                problems.append(f"{what}: expected {want}, read {got}")
        return f"badaddr {short_name(rid)} (NULL address)", problems


def _chunks(records: list[tuple[int, dict]]) -> dict[int, list[int]]:
    """The ids of the ``reg_list_chunk`` records after each ``reg_list`` record
    (by its line), when they add up to its ``total``."""
    out: dict[int, list[int]] = {}
    open_at: dict[str, int] = {}
    for line, rec in records:
        if rec["t"] == "reg_list" and rec.get("ret") == 0:
            open_at[rec["vm"]] = line
            out[line] = []
        elif rec["t"] == "reg_list_chunk" and rec.get("vm") in open_at:
            try:
                out[open_at[rec["vm"]]].extend(int(x, 16) for x in rec["ids"])
            except (KeyError, TypeError, ValueError):
                raise InputError(f"line {line}: bad reg_list_chunk record") from None
    totals = {line: rec.get("total") for line, rec in records if line in out}
    return {line: ids for line, ids in out.items() if ids and len(ids) == totals[line]}


def _compare(rec: dict, got: str) -> list[str]:
    want = _outcome(rec["ret"], rec.get("errno", ""))
    return [] if want == got else [f"expected {want}, read {got}"]


def replay(path: str | Path, history: History, kernel: str | None = None,
           cpu: str | None = None) -> Replay:
    """Replay a probe file on ``kernel`` (a release or ``[[stable]]`` name).

    ``kernel`` defaults to the ``start`` record's release, ``cpu`` to the
    file name's ``.cpu-<model>`` (else ``max``).  Bad input (not a probe
    file, unknown kernel or CPU model) raises :class:`InputError`.
    """
    records = read_records(path)
    if kernel is None:
        probed = records[0][1].get("release", "")
        if not any(st.name == probed for st in history.stable) \
                and probed not in history.releases:
            raise InputError(f"{path}: history {history.name!r} does not know the "
                             f"probed kernel {probed!r}; give --release")
        kernel = probed
    cpu = cpu or cpu_of(path)
    if cpu not in history.hosts():
        raise InputError(f"unknown CPU model {cpu!r} (history {history.name!r} "
                         f"knows: {', '.join(history.hosts())})")
    if history.has_other:
        history = history.with_registers("all")
    model = Kernel(history, kernel, parse_strategy("upstream"), host=cpu)
    result = Replay(str(path), history.name, kernel, cpu)
    replayer = _Replayer(model, _chunks(records))
    for line, rec in records:
        if rec["t"] in SKIPPED:
            result.skipped += 1
            continue
        result.total += 1
        try:
            mismatch = replayer.replay(line, rec)
        except InputError as exc:      # a record the replay cannot follow
            raise InputError(f"{path}: {exc}") from None
        if mismatch is not None:
            result.mismatches.append(mismatch)
    return result


# -- command line ----------------------------------------------------------------


