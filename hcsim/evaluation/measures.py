"""Migrations, outcome matrices, save/restore cost and the scorecard.

Everything here drives the scalar spec (:mod:`hcsim.model.kvm` through a
:mod:`hcsim.model.vmm` policy); the vectorised engine must agree with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import ceil

from hcsim.errors import InputError
from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.kvm import VCPU, Kernel
from hcsim.model.regs import is_feature
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Refused, Vmm, is_hypercall

#: Outcome classes, in the order tables show them, with their letter.
OUTCOMES = ("preserved", "gained", "lost", "mixed", "refused", "unsupported")
LETTERS = dict(zip(OUTCOMES, "PGLMRU"))
#: Column prefixes of the scorecard's outcome shares (``fwd_preserved``...).
SHARE_PREFIX = {"forward": "fwd", "backward": "bwd"}


@dataclass(frozen=True)
class Migration:
    """One migration of a guest from release ``src`` to release ``dst``."""

    src: int
    dst: int
    outcome: str
    gained: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    detail: str = ""
    blame: str = ""         # refused: hypercall | other | both (DESIGN.md section 9)


def classify(before: frozenset[str], after: frozenset[str]) -> str:
    """Outcome class of a guest view change."""
    gained, lost = after - before, before - after
    if gained and lost:
        return "mixed"
    return "lost" if lost else "gained" if gained else "preserved"


def boot(kernel: Kernel, vcpus: int) -> list[VCPU]:
    """Create a VM with ``vcpus`` initialised vCPUs (PSCI 0.2)."""
    vm = kernel.create_vm()
    return [vm.create_vcpu().init() for _ in range(vcpus)]


def unhandled(vmm: Vmm, cpu: VCPU) -> int | None:
    """A register the VMM cannot live with, or None."""
    return next((rid for rid in cpu.get_reg_list() if not vmm.handles(rid)), None)


def configured_values(kernel: Kernel, off: Config | Setting) -> dict[int, int]:
    """Feature register values with the services in ``off`` cleared.

    With a :class:`~hcsim.model.config.Setting`, services in ``setting.on`` are
    also set, and the firmware values it names are added under their
    register ids (where the kernel lists them).
    """
    setting = off if isinstance(off, Setting) else Setting(off=frozenset(off))
    layout, rel = kernel.layout, kernel.release
    values = {layout.regs[p].id: layout.reset(p, rel)
              for p in kernel.feature_pos.values()}
    for svc, pairs in zip(layout.history.services, layout.bits):
        if svc.introduced > rel or svc.name not in setting.off | setting.on:
            continue
        for pos, bit in pairs:
            rid = layout.regs[pos].id
            if rid in values:
                values[rid] = (values[rid] | 1 << bit if svc.name in setting.on
                               else values[rid] & ~(1 << bit))
    wanted = dict(setting.firmware)
    for rid, fw in kernel.firmware.items():
        if fw.name in wanted:
            values[rid] = wanted[fw.name]
    return values


def migrate(history: History, strategy: Strategy, vmm: Vmm, src: int, dst: int,
            off: Config | Setting = frozenset(), vcpus: int = 1,
            host: str | None = None) -> Migration:
    """Create, configure and save a VM on ``src``; restore it on ``dst``."""
    src_k = Kernel(history, src, strategy, host)
    dst_k = Kernel(history, dst, strategy, host)
    cpus = boot(src_k, vcpus)
    dcpus = boot(dst_k, vcpus)
    for side, cpu in (("source", cpus[0]), ("destination", dcpus[0])):
        rid = unhandled(vmm, cpu)
        if rid is not None:
            return Migration(src, dst, "unsupported",
                             detail=f"{vmm.name} cannot handle {cpu.vm.kernel.reg_name(rid)} "
                                    f"on the {side}")
    if off:
        try:
            vmm.configure(cpus, configured_values(src_k, off))
        except Refused as exc:    # as chain.create: a setting the source rejects
            raise InputError(f"cannot configure a VM on {src_k.name}: {exc.detail}") from None
    before = cpus[0].vm.guest_view()
    stream = vmm.save(cpus)
    try:
        vmm.restore(dcpus, stream)
    except Refused as exc:
        return Migration(src, dst, "refused", detail=exc.detail, blame=exc.blame)
    after = dcpus[0].vm.guest_view()
    return Migration(src, dst, classify(before, after),
                     after - before, before - after)


def matrix(history: History, strategy: Strategy, vmm: Vmm,
           off: Config = frozenset(), vcpus: int = 1) -> list[Migration]:
    """Every ordered release pair, source-major."""
    n = len(history.releases)
    return [migrate(history, strategy, vmm, s, d, off, vcpus)
            for s in range(n) for d in range(n)]


@dataclass(frozen=True)
class Cost:
    """Cost of a same-release save/restore at one release.

    ``registers``, ``bytes_per_vcpu``, ``bytes_per_vm`` and ``ioctls`` are
    the hypercall registers (firmware and feature) the VMM saves; the
    ``list_*`` fields the whole list it saves (DESIGN.md section 9: with the
    other registers, in the ``all`` view of a history that has them; else
    the same as the hypercall columns).
    """

    release: str
    registers: int | None
    bytes_per_vcpu: int | None
    bytes_per_vm: int | None
    ioctls: int | None
    floor_bytes: int
    list_registers: int | None = None
    list_bytes_per_vcpu: int | None = None
    list_ioctls: int | None = None


def cost_at(history: History, strategy: Strategy, vmm: Vmm, release: int,
            vcpus: int = 1, feature_only: bool = False) -> Cost:
    """Registers saved, wire bytes and ioctls of one save/restore."""
    kernel = Kernel(history, release, strategy)
    cpu = boot(kernel, 1)[0]
    floor = ceil(len(history.supported(release)) / 8)
    name = history.releases[release]
    if unhandled(vmm, cpu) is not None:
        return Cost(name, None, None, None, None, floor)
    whole = [rid for rid in cpu.get_reg_list() if vmm.saves(rid)]
    saved = [rid for rid in whole if is_hypercall(rid)
             and (is_feature(rid) or not feature_only)]
    per_vcpu = sum(vmm.wire_bytes(rid) for rid in saved)
    list_bytes = sum(vmm.wire_bytes(rid) for rid in whole)
    return Cost(name, len(saved), per_vcpu, per_vcpu * vcpus,
                2 * len(saved) * vcpus, floor, len(whole), list_bytes,
                2 * len(whole) * vcpus)


def cost(history: History, strategy: Strategy, vmm: Vmm,
         vcpus: int = 1) -> list[Cost]:
    """Cost rows for every release."""
    return [cost_at(history, strategy, vmm, r, vcpus)
            for r in range(len(history.releases))]


def shares(migrations: list[Migration], direction: str) -> dict[str, float]:
    """Share of each outcome among forward (src older) or backward pairs."""
    keep = [m for m in migrations
            if (m.src < m.dst if direction == "forward" else m.src > m.dst)]
    total = len(keep) or 1
    return {o: sum(m.outcome == o for m in keep) / total for o in OUTCOMES}


#: Refusals by blame, as scorecard columns: ``strategy`` (the hypercall
#: registers: firmware or feature), ``drift`` (other registers the strategy
#: does not control), ``both``.
REFUSAL_SPLIT = {"hypercall": "strategy", "other": "drift", "both": "both"}


def refusal_shares(migrations: list[Migration], direction: str) -> dict[str, float]:
    """Share of forward or backward pairs refused, by blame (:data:`REFUSAL_SPLIT`)."""
    keep = [m for m in migrations
            if (m.src < m.dst if direction == "forward" else m.src > m.dst)]
    total = len(keep) or 1
    return {col: sum(m.outcome == "refused" and m.blame == blame for m in keep) / total
            for blame, col in REFUSAL_SPLIT.items()}


def new_vm_pickup(history: History, strategy: Strategy) -> float:
    """Share of the last release's services a default new VM sees."""
    last = len(history.releases) - 1
    supported = history.supported(last)
    if not supported:
        return 1.0
    vm = Kernel(history, last, strategy).create_vm()
    return len(vm.guest_view()) / len(supported)


@dataclass(frozen=True)
class Score:
    """One scorecard row."""

    strategy: str
    forward: dict[str, float]
    backward: dict[str, float]
    silent_loss: float
    bytes_per_vcpu: int | None
    pickup: float
    exhaustion: str
    userspace_patch: bool
    refused_by: dict = None      # {"forward": {strategy, drift, both}, "backward": ...}
    list_bytes_per_vcpu: int | None = None

    def flat(self) -> dict:
        row = {"strategy": self.strategy}
        for direction in ("forward", "backward"):
            for o, v in getattr(self, direction).items():
                row[f"{SHARE_PREFIX[direction]}_{o}"] = v
        row.update({k: v for k, v in asdict(self).items()
                    if k not in ("strategy", "forward", "backward", "refused_by")})
        for direction in ("forward", "backward"):
            for col, v in (self.refused_by or {}).get(direction, {}).items():
                row[f"{SHARE_PREFIX[direction]}_refused_{col}"] = v
        return row


def score(history: History, strategy: Strategy, vmm: Vmm,
          migrations: list[Migration]) -> Score:
    """Summarise one strategy's matrix and cost under one VMM."""
    off_diag = [m for m in migrations if m.src != m.dst]
    silent = sum(m.outcome in ("lost", "mixed") for m in off_diag) / (len(off_diag) or 1)
    last = cost_at(history, strategy, vmm, len(history.releases) - 1)
    fwd = shares(migrations, "forward")
    ex = strategy.layout(history).exhaustion()
    return Score(strategy.spec, fwd, shares(migrations, "backward"), silent,
                 last.bytes_per_vcpu, new_vm_pickup(history, strategy),
                 history.releases[ex] if ex is not None else "",
                 fwd["preserved"] < 1.0,
                 {d: refusal_shares(migrations, d) for d in ("forward", "backward")},
                 last.list_bytes_per_vcpu)
