"""The fleet's model: host types, memoised guest-state transitions, the rollout
schedule and the guest population (see :mod:`hcsim.analyses.fleet`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hcsim.analyses.chain import Guest, create, hop
from hcsim.analyses.inventory import Inventory, Plan
from hcsim.evaluation.outcomes import CODES
from hcsim.model import vmm as vmm_mod
from hcsim.model.config import Config, Setting
from hcsim.model.history import History, data_path
from hcsim.model.kvm import Kernel
from hcsim.model.strategies import Strategy

#: The example fleet shipped with hcsim (inventory, plan; README).
EXAMPLE = data_path("fleet-example")


@dataclass(frozen=True)
class HostType:
    """What a migration depends on about a host: kernel, CPU profile, VMM."""

    kernel: str
    cpu: str
    vmm: str


class Transitions:
    """Interned guest states and the lazily filled transition table of one strategy."""

    def __init__(self, history: History, strategy: Strategy):
        self.history = history
        self.strategy = strategy
        self.types: list[HostType] = []
        self._type_id: dict[HostType, int] = {}
        self._kernels: dict[tuple[str, str], Kernel] = {}
        self._vmms: dict[str, vmm_mod.Vmm] = {}
        self.guests: list[Guest] = []          # a representative guest per state
        self.state_type: list[int] = []
        self.state_view: list[int] = []
        self._state_id: dict[tuple, int] = {}
        self.views: list[frozenset[str]] = []
        self._view_id: dict[frozenset[str], int] = {}
        self._created: dict[tuple[int, Any], int] = {}
        self.next_state = np.full((0, 0), -1, dtype=np.int32)
        self.outcome = np.full((0, 0), -1, dtype=np.int8)
        self.bytes = np.zeros((0, 0), dtype=np.int64)
        self.computed = 0

    # interning
    def type_id(self, t: HostType) -> int:
        if t not in self._type_id:
            self._type_id[t] = len(self.types)
            self.types.append(t)
            self._grow()
        return self._type_id[t]

    def kernel(self, t: HostType) -> Kernel:
        key = (t.kernel, t.cpu)
        if key not in self._kernels:
            self._kernels[key] = Kernel(self.history, t.kernel, self.strategy, t.cpu)
        return self._kernels[key]

    def vmm(self, name: str) -> vmm_mod.Vmm:
        if name not in self._vmms:
            self._vmms[name] = vmm_mod.parse(name)
        return self._vmms[name]

    def _view(self, view: frozenset[str]) -> int:
        if view not in self._view_id:
            self._view_id[view] = len(self.views)
            self.views.append(view)
        return self._view_id[view]

    def _state(self, type_id: int, guest: Guest) -> int:
        key = (self.types[type_id].vmm, guest.state())
        if key not in self._state_id:
            self._state_id[key] = len(self.guests)
            self.guests.append(guest)
            self.state_type.append(type_id)
            self.state_view.append(self._view(guest.view))
            self._grow()
        return self._state_id[key]

    def _grow(self) -> None:
        ns, nt = len(self.guests), len(self.types)
        rows, cols = self.next_state.shape
        if ns <= rows and nt <= cols:
            return
        new_rows, new_cols = max(ns, 2 * rows, 8), max(nt, 2 * cols, 8)
        for name, fill in (("next_state", -1), ("outcome", -1), ("bytes", 0)):
            old = getattr(self, name)
            grown = np.full((new_rows, new_cols), fill, dtype=old.dtype)
            grown[:rows, :cols] = old
            setattr(self, name, grown)

    # states and transitions
    def created(self, type_id: int, config: Config | Setting) -> int:
        """State of a guest booted on a host of ``type_id`` with ``config``."""
        memo = (type_id, config)
        if memo not in self._created:
            t = self.types[type_id]
            guest = create(self.kernel(t), self.vmm(t.vmm), config)
            self._created[memo] = self._state(type_id, guest)
        return self._created[memo]

    def ensure(self, states: np.ndarray, dsts: np.ndarray) -> None:
        """Compute every (state, destination type) pair not in the table yet."""
        missing = self.next_state[states, dsts] < 0
        if not missing.any():
            return
        keys = np.unique(states[missing].astype(np.int64) * len(self.types) + dsts[missing])
        for key in keys.tolist():
            s, d = divmod(key, len(self.types))
            t = self.types[d]
            step, moved = hop(self.guests[s], self.vmm(t.vmm), self.kernel(t))
            new = self._state(d, moved) if step.outcome not in ("refused", "unsupported") else s
            self.next_state[s, d] = new
            self.outcome[s, d] = CODES[step.outcome]
            self.bytes[s, d] = step.bytes_per_vcpu
            self.computed += 1

    def drift_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``lost[b, v]``/``gained[b, v]``: view ``v`` lacks/adds services of boot view ``b``."""
        n = len(self.views)
        lost = np.array([[bool(b - v) for v in self.views] for b in self.views],
                        dtype=bool).reshape(n, n)
        gained = np.array([[bool(v - b) for v in self.views] for b in self.views],
                          dtype=bool).reshape(n, n)
        return lost, gained


@dataclass(frozen=True)
class Wave:
    date: dt.date
    label: str
    rollback: bool
    hosts: np.ndarray      # host indices changing kernel
    to: int                # kernel id


@dataclass
class Schedule:
    """Hosts (per-host group, CPU, VMM) and the kernel changes of every wave."""

    kernels: list[str]
    start_kernel: np.ndarray
    cpu: list[str]
    vmm: list[str]
    host_cpu: np.ndarray
    host_vmm: np.ndarray
    waves: list[Wave]
    kernel_after: list[np.ndarray] = field(default_factory=list)


def schedule(history: History, inventory: Inventory, plan: Plan, seed: int) -> Schedule:
    """Host arrays and every wave's batch, in date order (rollouts in file order)."""
    kernels: list[str] = []
    cpus = sorted({g.cpu for g in inventory.groups})
    vmms = sorted({g.vmm for g in inventory.groups})

    def kid(name: str) -> int:
        if name not in kernels:
            kernels.append(name)
        return kernels.index(name)

    sizes = [g.hosts for g in inventory.groups]
    group_of = np.repeat(np.arange(len(sizes)), sizes)
    start = np.array([kid(g.kernel) for g in inventory.groups], dtype=np.int32)[group_of]
    host_cpu = np.array([cpus.index(g.cpu) for g in inventory.groups], dtype=np.int32)[group_of]
    host_vmm = np.array([vmms.index(g.vmm) for g in inventory.groups], dtype=np.int32)[group_of]
    names = [g.name for g in inventory.groups]
    events = sorted(((day, r, k) for r, ro in enumerate(plan.rollouts)
                     for k, day in enumerate(ro.dates())), key=lambda e: (e[0], e[1], e[2]))
    current = start.copy()
    batches: dict[int, list[np.ndarray]] = {}
    waves, after = [], []
    for day, r, k in events:
        ro = plan.rollouts[r]
        to = kid(ro.to)
        if r not in batches:
            in_groups = np.isin(group_of, [names.index(g) for g in ro.groups])
            eligible = in_groups & (current != to)
            if ro.frm is not None:
                eligible &= current == kid(ro.frm)
            chosen = np.flatnonzero(eligible)
            chosen = chosen[np.random.default_rng([seed, 1, r]).permutation(chosen.size)]
            batches[r] = np.array_split(chosen, ro.waves)
        batch = batches[r][k]
        batch = batch[current[batch] != to]
        current[batch] = to
        waves.append(Wave(day, ro.label if ro.waves == 1 else f"{ro.label} {k + 1}/{ro.waves}",
                          ro.rollback, batch, to))
        after.append(current.copy())
    return Schedule(kernels, start, cpus, vmms, host_cpu, host_vmm, waves, after)


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform(seed: int, ids: np.ndarray, salt: int) -> np.ndarray:
    """Counter-based uniforms in [0, 1): splitmix64 of (seed, salt, id)."""
    key = np.uint64(_mix(_mix(seed & _MASK) ^ (salt & _MASK)))
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass
class Population:
    """Every guest's creation day, first host and vCPUs (drawn once, shared by all runs)."""

    day: np.ndarray
    host: np.ndarray
    vcpus: np.ndarray


def population(plan: Plan, hosts: int, count: int, seed: int) -> Population:
    rng = np.random.default_rng([seed, 0])
    span = (plan.end - plan.start).days
    initial = int(round(plan.guests.initial * count))
    later = rng.integers(1, span + 1, size=count - initial) if span else \
        np.zeros(count - initial, dtype=np.int64)
    day = np.sort(np.concatenate([np.zeros(initial, dtype=np.int64), later])).astype(np.int32)
    host = rng.integers(0, hosts, size=count).astype(np.int32)
    vcpus = rng.choice(np.asarray(plan.guests.vcpus, dtype=np.int32), size=count)
    return Population(day, host, vcpus)

