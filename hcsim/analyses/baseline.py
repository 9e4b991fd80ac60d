"""The fleet baseline: one VM configuration that every host of a fleet can keep.

libvirt answers "which CPU model can a guest use so that it runs on every
host?" with a *baseline*; this module answers the same question for
hypercall services.  Given a set of hosts (kernels of a history, each with a
host CPU profile), a strategy and a VMM, it finds what the VMM should write
when it creates a VM, register by register, so that a guest created on any
host migrates between every ordered pair of hosts without losing a service
or being refused, then **verifies** that claim pair by pair with the scalar
spec (:mod:`hcsim.model.kvm` driven by :mod:`hcsim.analyses.chain`), and reports the pairs
that no configuration can save, and why.

How the candidate is built
--------------------------
* **Services.** For each host the spec is asked what a VMM *can* make a
  guest see: the view with every service written on (``M_h``) and with every
  service written off (``F_h``, what the host shows whatever is written:
  everything before ``registers_from``, ``std`` services under
  ``full-bitmap``, every default under crosvm, which never writes class
  0x16).  The baseline turns a service on only where every host can show it
  (it is in every ``M_h``) and its ``default`` is ``on`` (``--opt-in``
  includes opt-in services such as ``DISCOVER_IMPL_*``); it also keeps on a
  service some host cannot turn off, if every host can show it.  Every other
  service is written off.
* **Firmware values.** A ``store`` firmware register (``PSCI_VERSION``)
  gets the highest value every host listing it accepts (the newest PSCI
  version common to the fleet); with no common value it keeps its reset
  value.  ``check`` registers (``SMCCC_ARCH_WORKAROUND_*``) cannot be
  configured (reads keep the host's level): they are listed with their host
  levels only.
* **Register values** are what :func:`hcsim.evaluation.spec.configured_values`
  writes for that :class:`~hcsim.model.config.Setting` on each host, through the
  VMM's own ``configure`` (QEMU writes back its whole list; crosvm cannot
  write bitmaps, so its feature registers keep their reset values).

What "safe" means
-----------------
A guest is created with the baseline on the source host, migrated with the
VMM's rules to a fresh VM on the destination, and the pair is **safe** when
the outcome is ``preserved`` *and* the guest lands in exactly the state
(feature and stored firmware values) a guest created with the baseline on
the destination would have.  The second condition makes safety compose:
every path through safe pairs, of any length, keeps the boot view
(:mod:`hcsim.analyses.chain`).  The diagonal (two hosts of the same kind) is
verified too: under ``invalidate-on-write:scope=fw`` it can fail.  A pair
that is not safe is **drift** when the guest is neither lost nor refused
but its state changes (``gained``: QEMU writes back the reset value of a
register absent from the stream, so a default-on service of a register new
on the destination appears; or ``preserved`` into a non-baseline state),
and **impossible** otherwise (``lost``, ``mixed``, ``refused``,
``unsupported``): no value written at creation changes the register list
QEMU counts or a host's workaround level.

Services *given up* are, per host, the default view minus the baseline
view; firmware values given up are the host's reset values the baseline
overrides (``PSCI_VERSION`` 1.3 -> 1.1 on v6.13 and later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hcsim.analyses.chain import Guest, create, hop
from hcsim.errors import InputError
from hcsim.evaluation.spec import configured_values
from hcsim.model.config import Setting
from hcsim.model.history import History
from hcsim.model.kvm import Kernel
from hcsim.model.regs import is_feature
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Cause, Vmm

#: Separator between a kernel and its host CPU profile in ``--releases``.
CPU_SEP = "@"


@dataclass(frozen=True)
class HostSpec:
    """A kind of host: a kernel (release or ``[[stable]]`` name) and a host CPU profile."""

    kernel: str
    cpu: str

    def label(self, default_cpu: str) -> str:
        return self.kernel if self.cpu == default_cpu else f"{self.kernel}{CPU_SEP}{self.cpu}"


@dataclass(frozen=True)
class Register:
    """One register of the baseline: the value to write, or why there is none."""

    id: int
    name: str
    value: int | None        # None: not written (check register, or VMM cannot)
    hosts: tuple[str, ...]   # hosts that list it
    note: str = ""


@dataclass(frozen=True)
class HostCost:
    """What the baseline costs on one kind of host, against a default VM there."""

    host: str
    given_up: frozenset[str]
    turned_on: frozenset[str]
    firmware: tuple[tuple[str, int, int], ...]   # (name, default value, baseline value)
    view: frozenset[str]                         # the view a baseline guest boots with
    shows_anyway: frozenset[str] = frozenset()   # in view, but not in the baseline
    cannot_show: frozenset[str] = frozenset()    # in the baseline, not in view


@dataclass(frozen=True)
class Pair:
    """Verification of one ordered pair of hosts."""

    src: str
    dst: str
    outcome: str
    gained: frozenset[str]
    lost: frozenset[str]
    cause: Cause | None
    status: str
    why: str = ""

    @property
    def detail(self) -> str:
        """The cause of a loud failure as text (``""`` when there is none)."""
        return "" if self.cause is None else str(self.cause)

    @property
    def safe(self) -> bool:
        return self.status == "safe"


@dataclass(frozen=True)
class Baseline:
    """The configuration, its cost per host and its verification on every pair."""

    history: str
    strategy: str
    vmm: str
    hosts: tuple[str, ...]
    services: frozenset[str]
    setting: Setting
    registers: tuple[Register, ...]
    costs: tuple[HostCost, ...]
    pairs: tuple[Pair, ...]
    opt_in: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def safe(self) -> bool:
        return all(p.safe for p in self.pairs)

    @property
    def impossible(self) -> list[Pair]:
        """Pairs where a baseline guest is lost, mixed, refused or unsupported."""
        return [p for p in self.pairs if p.status == "impossible"]

    @property
    def drifting(self) -> list[Pair]:
        """Pairs without loss or refusal where the guest's state still changes."""
        return [p for p in self.pairs if p.status == "drift"]

    def safe_pairs(self) -> set[tuple[str, str]]:
        return {(p.src, p.dst) for p in self.pairs if p.safe}


# -- host specs ----------------------------------------------------------------------

def parse_hosts(text: str, history: History) -> list[HostSpec]:
    """``v6.1,v6.6@cortex-a72,6.1.0-56-arm64@max``: kernels with optional CPU profiles."""
    specs = []
    for item in text.split(","):
        item = item.strip()
        kernel, sep, cpu = item.partition(CPU_SEP)
        if not kernel:
            raise InputError(f"--releases {text!r}: empty kernel name")
        if sep and not cpu:
            raise InputError(f"--releases {text!r}: empty CPU profile after {CPU_SEP!r}")
        specs.append(host_spec(history, kernel, cpu if sep else None, f"--releases {text!r}"))
    return specs


def host_spec(history: History, kernel: str, cpu: str | None, where: str) -> HostSpec:
    """A validated :class:`HostSpec`; ``cpu`` None means the history's host profile."""
    if kernel not in history.releases and all(s.name != kernel for s in history.stable):
        raise InputError(f"{where}: unknown kernel {kernel!r} (not a release or [[stable]] "
                         f"kernel of history {history.name!r})")
    cpu = cpu or history.host
    if cpu not in history.hosts():
        raise InputError(f"{where}: unknown host CPU profile {cpu!r} "
                         f"(known: {', '.join(history.hosts())})")
    return HostSpec(kernel, cpu)


def unique(specs: Sequence[HostSpec]) -> list[HostSpec]:
    """Specs without repeats, in first-seen order."""
    return list(dict.fromkeys(specs))


# -- the baseline ----------------------------------------------------------------------

def compute(history: History, strategy: Strategy, vmm: Vmm, hosts: Sequence[HostSpec],
            opt_in: bool = False) -> Baseline:
    """Build the candidate configuration for ``hosts`` and verify it on every pair."""
    hosts = unique(hosts)
    if not hosts:
        raise InputError("a baseline needs at least one host")
    kernels = [Kernel(history, h.kernel, strategy, h.cpu) for h in hosts]
    labels = [h.label(history.host) for h in hosts]
    every = frozenset(s.name for s in history.services)
    firmware = _firmware_values(kernels)
    fw_setting = tuple((name, value) for name, (value, _) in firmware.items()
                       if value is not None)
    can_show = [_view(k, vmm, Setting(on=every, firmware=fw_setting)) for k in kernels]
    forced = [_view(k, vmm, Setting(off=every, firmware=fw_setting)) for k in kernels]
    shown_everywhere = frozenset.intersection(*can_show)
    wanted = {s.name for s in history.services
              if s.name in shown_everywhere and (s.default_on or opt_in)}
    wanted |= frozenset().union(*forced) & shown_everywhere
    opt = {s.name for s in history.services if not s.default_on}
    setting = Setting(off=every - wanted, on=frozenset(wanted) & opt, firmware=fw_setting)

    guests = [create(k, vmm, setting) for k in kernels]
    defaults = [create(k, vmm) for k in kernels]
    costs = tuple(_cost(label, k, g, d, setting, frozenset(wanted))
                  for label, k, g, d in zip(labels, kernels, guests, defaults))
    pairs = tuple(_verify(labels[a], labels[b], guests[a], guests[b], kernels[b], vmm)
                  for a in range(len(hosts)) for b in range(len(hosts)))
    notes = tuple(f"no {name} value is accepted by every host: left at reset ({why})"
                  for name, (value, why) in firmware.items() if value is None)
    return Baseline(history.name, strategy.spec, vmm.name, tuple(labels), frozenset(wanted),
                    setting, _registers(kernels, labels, vmm, setting), costs, pairs,
                    opt_in, notes)


def _view(kernel: Kernel, vmm: Vmm, setting: Setting) -> frozenset[str]:
    try:
        return create(kernel, vmm, setting).view
    except InputError:
        return create(kernel, vmm).view


def _firmware_values(kernels: list[Kernel]) -> dict[str, tuple[int | None, str]]:
    """Per ``store`` firmware register listed somewhere: (value to write, note)."""
    listed: dict[str, list[frozenset[int]]] = {}
    for k in kernels:
        for rid, fw in k.firmware.items():
            if fw.on_write == "store":
                listed.setdefault(fw.name, []).append(
                    fw.at(k.firmware_release[rid], k.host).accepts)
    out = {}
    for name, accepts in sorted(listed.items()):
        common = frozenset.intersection(*accepts)
        out[name] = (max(common), "") if common else (None, "accepted sets do not meet")
    return out


def _cost(label: str, kernel: Kernel, guest: Guest, default: Guest,
          setting: Setting, wanted: frozenset[str]) -> HostCost:
    values = dict(setting.firmware)
    fw = tuple((f.name, default.vcpus[0].get_one_reg(rid), values[f.name])
               for rid, f in sorted(kernel.firmware.items())
               if f.name in values and default.vcpus[0].get_one_reg(rid) != values[f.name])
    return HostCost(label, default.view - guest.view, guest.view - default.view, fw, guest.view,
                    guest.view - wanted, wanted - guest.view)


def _verify(src: str, dst: str, guest: Guest, fresh_dst: Guest, dst_kernel: Kernel,
            vmm: Vmm) -> Pair:
    step, landed = hop(guest, vmm, dst_kernel)
    if step.outcome == "preserved":
        status = "safe" if landed.state() == fresh_dst.state() else "drift"
    else:
        status = "drift" if step.outcome == "gained" else "impossible"
    why = ""
    if step.outcome == "preserved" and status == "drift":
        why = ("preserved, but the guest lands in a state a baseline VM on the "
               "destination would not have: a later hop may differ")
    elif status != "safe":
        why = _explain(step.outcome, step.cause, guest, fresh_dst, vmm)
    return Pair(src, dst, step.outcome, step.gained, step.lost, step.cause, status, why)


def _explain(outcome: str, cause: Cause | None, guest: Guest, dst: Guest, vmm: Vmm) -> str:
    """A sentence on why no configuration can save the pair."""
    src_ids = [r for r in guest.vcpus[0].get_reg_list() if vmm.saves(r)]
    dst_ids = set(r for r in dst.vcpus[0].get_reg_list() if vmm.saves(r))
    reg_name = guest.kernel.reg_name     # the strategy's names, as in refusal details
    extra = [reg_name(r) for r in src_ids if r not in dst_ids]
    kind = cause.kind if cause is not None else ""
    if kind == "count":
        zero = [reg_name(r) for r in src_ids if r not in dst_ids
                and guest.vcpus[0].get_one_reg(r) == 0]
        text = f"QEMU's register count check: the destination lacks {', '.join(extra)}"
        return text + (" (sent although it is 0)" if zero else "")
    if kind == "errno" and cause.errno == "EINVAL" and cause.reg in src_ids \
            and not is_feature(cause.reg):
        rid = cause.reg
        fw = dst.kernel.firmware.get(rid)
        value = guest.vcpus[0].get_one_reg(rid)
        accepts = "" if fw is None else ", ".join(
            f"0x{v:x}" for v in sorted(fw.at(dst.kernel.firmware_release[rid],
                                             dst.kernel.host).accepts))
        return (f"the source reads {cause.name.removeprefix('KVM_REG_ARM_')} = 0x{value:x}, "
                f"the destination accepts only {accepts}" + (
                    " (host workaround level: not configurable)"
                    if fw is not None and fw.on_write == "check" else ""))
    if kind == "errno" and cause.errno == "ENOENT" and extra:
        return f"the destination lacks {', '.join(extra)}"
    if outcome in ("lost", "mixed"):
        return "the destination cannot show a service the source guest booted with"
    if outcome == "gained":
        new = [reg_name(r) for r in dst.vcpus[0].get_reg_list()
               if vmm.saves(r) and r not in set(src_ids)]
        if new:
            return (f"{', '.join(new)} is not in the source's stream and keeps its "
                    "reset value on the destination")
        return "the destination shows a service the baseline cannot turn off there"
    return "" if cause is None else str(cause)


def _registers(kernels: list[Kernel], labels: list[str], vmm: Vmm,
               setting: Setting) -> tuple[Register, ...]:
    per_host = [configured_values(k, setting) for k in kernels]
    reg_name = kernels[0].reg_name
    lists = [set(k.reg_ids) for k in kernels]
    ids = sorted(set().union(*lists))
    out = []
    for rid in ids:
        listing = [n for n, ids_n in enumerate(lists) if rid in ids_n]
        names = tuple(labels[n] for n in listing)
        fw = next((kernels[n].firmware[rid] for n in listing if rid in kernels[n].firmware), None)
        if not vmm.saves(rid):
            out.append(Register(rid, reg_name(rid), None, names,
                                f"{vmm.name} cannot write it: keeps its reset value"))
        elif fw is not None and fw.on_write == "check":
            levels = sorted({fw.at(kernels[n].firmware_release[rid], kernels[n].host).reset
                             for n in listing})
            out.append(Register(rid, reg_name(rid), None, names,
                                "host level, not configurable: "
                                + "/".join(f"0x{v:x}" for v in levels)))
        elif rid not in per_host[listing[0]]:
            out.append(Register(rid, reg_name(rid), None, names,
                                "no value accepted by every host: left at reset"))
        else:
            values = {per_host[n][rid] for n in listing}
            value = values.pop() if len(values) == 1 else None
            note = "" if value is not None else "differs per host: " + ", ".join(
                f"{labels[n]}=0x{per_host[n][rid]:x}" for n in listing)
            out.append(Register(rid, reg_name(rid), value, names, note))
    return tuple(out)


# -- rendering ---------------------------------------------------------------------


# -- command line ----------------------------------------------------------------------


