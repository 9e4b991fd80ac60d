"""Fleet simulator: a year of kernel rollouts with guests evacuated across them.

The model (what is simulated)
-----------------------------
* **Hosts** come from an inventory (:mod:`hcsim.analyses.inventory`: groups of
  identical hosts with a kernel, a host CPU profile and a VMM policy; TOML
  or CSV).  A host's CPU and VMM never change; rollouts change its kernel.
* **A plan** (:mod:`hcsim.analyses.inventory`, TOML) lists rollouts: waves of kernel
  upgrades (or a rollback) on dates, each taking a shuffled batch of the
  eligible hosts.
* **Guests** are created over the year (a share on the first day, the rest
  uniformly after), each on a uniformly drawn host, with ``default``
  configuration (reset values) or the fleet ``baseline``
  (:mod:`hcsim.analyses.baseline` computed over every kernel the hosts of the
  guest's pool run during the plan).  Guests live to the end.
* **Evacuation.** Before a host changes kernel, every guest on it is
  live-migrated to a host of the same VMM and CPU profile (a *pool*) that
  is not in the wave, chosen by
  the plan's placement rule: ``same-release`` (default: a host running the
  guest's current kernel, else any), ``upgraded`` (a host already running
  the wave's target kernel, else ``same-release``), ``random`` (any).  No
  capacity limit is modelled.  A refused or unsupported migration leaves
  the guest on its host: it is shut down and booted again on the upgraded
  host (a fresh VM with its configuration; its boot view starts anew).  A
  guest with no possible destination (no other host of its VMM) is
  *stranded* and rebooted the same way.  *Giving up* counts baseline guests
  that boot with fewer services than a default guest on the same host.

The engine (how it runs)
------------------------
A guest's *state* is its host's kernel, CPU profile and VMM plus the values
it reads back (:meth:`hcsim.analyses.chain.Guest.state`); fleets have few distinct
states.  Each state is interned to an integer, and a transition table
``(state, destination host type) -> (new state, outcome, bytes per vCPU)``
is filled lazily, once per distinct pair, by the scalar spec
(:func:`hcsim.analyses.chain.hop` on a representative guest).  All guests then move
with numpy indexing; drift against each guest's boot view is a lookup in a
(view x view) table.  Random draws (creation day, host, vCPUs, wave batches)
come up front from ``numpy.random.default_rng(seed)``; the destination of a
guest in a wave is a counter-based hash of (seed, guest, wave), so every
strategy, VMM and configuration sees the same guests, hosts and choices
until their outcomes differ.  The vectorised engine (:mod:`hcsim.evaluation.engine`)
evaluates fresh VMs only; a carried state needs the scalar hop, which the
memo table makes cheap.

The records (what comes out)
----------------------------
:func:`simulate` returns a :class:`FleetResult` with ``summary`` (one row per
strategy, VMM and configuration: guests broken silently, evacuations
refused, hosts that cannot drain, guests that gained services, bytes moved,
...), ``timeline`` (the same counters, cumulative, after every wave) and
``hosts`` (hosts per kernel after every wave), as tidy pandas frames.
Bytes moved are the wire bytes of every attempted migration's stream
(``bytes_per_vcpu`` of the source's registers under the VMM, as
:func:`hcsim.evaluation.measures.cost_at`) times the guest's vCPUs.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hcsim.analyses.baseline import HostSpec
from hcsim.analyses.baseline import compute as compute_baseline
from hcsim.analyses.chain import Guest, create, hop
from hcsim.analyses.inventory import Inventory, Plan, load_inventory, load_plan
from hcsim.errors import InputError
from hcsim.evaluation.measures import OUTCOMES
from hcsim.frontends import commands, tables
from hcsim.model import history as history_mod
from hcsim.model import strategies as strategies_mod
from hcsim.model import vmm as vmm_mod
from hcsim.model.config import Config, Setting
from hcsim.model.history import History
from hcsim.model.kvm import Kernel
from hcsim.model.strategies import Strategy

PRESERVED, GAINED, LOST, MIXED, REFUSED, UNSUPPORTED = range(len(OUTCOMES))
#: Configurations a guest can be created with.
CONFIGS = ("default", "baseline")
#: Label of the VMM column when each group keeps the inventory's VMM.
INVENTORY_VMM = "inventory"

SUMMARY_COLUMNS = ("strategy", "vmm", "config", "hosts", "guests", "evacuations",
                   "refused", "unsupported", "stranded", "hosts_blocked", "lost_hops",
                   "broken_guests", "broken_at_end", "gained_guests", "giving_up_guests",
                   "bytes_moved", "states", "transitions")
TIMELINE_COLUMNS = ("strategy", "vmm", "config", "wave", "date", "label", "rollback",
                    "hosts_changed", "guests", "evacuations", "refused", "unsupported",
                    "stranded", "hosts_blocked", "lost_hops", "broken_guests",
                    "broken_now", "gained_guests", "bytes_moved")


# -- memoised transitions ------------------------------------------------------------

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
            self.outcome[s, d] = OUTCOMES.index(step.outcome)
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


# -- the schedule of host kernels ----------------------------------------------------

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


# -- hashing for placement ---------------------------------------------------------------

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


# -- guests ---------------------------------------------------------------------------

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


# -- one run -------------------------------------------------------------------------------

def _run(history: History, sched: Schedule, plan: Plan, pop: Population, trans: Transitions,
         configs: dict[tuple[str, str], Config | Setting],
         seed: int) -> tuple[dict, list[dict]]:
    """Simulate one (strategy, VMM, configuration); summary row and timeline rows."""
    n_hosts, n = sched.start_kernel.size, pop.day.size
    type_table = {}

    def types_of(kernel: np.ndarray) -> np.ndarray:
        combo = (kernel.astype(np.int64) * len(sched.cpu) + sched.host_cpu) * len(sched.vmm) \
            + sched.host_vmm
        uniq, inv = np.unique(combo, return_inverse=True)
        ids = []
        for c in uniq.tolist():
            if c not in type_table:
                k, rest = divmod(c, len(sched.cpu) * len(sched.vmm))
                cpu, vmm = divmod(rest, len(sched.vmm))
                type_table[c] = trans.type_id(HostType(sched.kernels[k], sched.cpu[cpu],
                                                       sched.vmm[vmm]))
            ids.append(type_table[c])
        return np.asarray(ids, dtype=np.int32)[inv]

    host_kernel = sched.start_kernel.copy()
    host_type = types_of(host_kernel)

    def creation_states(types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uniq, inv = np.unique(types, return_inverse=True)
        chosen, default = [], []
        for t in uniq.tolist():
            pool = (trans.types[t].vmm, trans.types[t].cpu)
            # Memoised by the configuration itself: runs of one strategy share the
            # table, and a pool's baseline depends on which hosts the run gives it.
            chosen.append(trans.created(t, configs[pool]))
            default.append(trans.created(t, frozenset()))
        return np.asarray(chosen, np.int32)[inv], np.asarray(default, np.int32)[inv]

    g_host = pop.host.copy()
    g_state = np.zeros(n, dtype=np.int32)
    g_boot = np.zeros(n, dtype=np.int32)
    ever_lost = np.zeros(n, dtype=bool)
    ever_gained = np.zeros(n, dtype=bool)
    giving_up = np.zeros(n, dtype=bool)
    counts = dict.fromkeys(("evacuations", "refused", "unsupported", "stranded",
                            "hosts_blocked", "lost_hops", "bytes_moved"), 0)
    created = 0
    timeline = []
    view_of = np.zeros(0, dtype=np.int32)

    def refresh_views() -> np.ndarray:
        return np.asarray(trans.state_view, dtype=np.int32)

    def create_until(day: int) -> None:
        nonlocal created
        stop = int(np.searchsorted(pop.day, day, side="right"))
        if stop <= created:
            return
        sl = slice(created, stop)
        states, defaults = creation_states(host_type[g_host[sl]])
        g_state[sl] = states
        views = refresh_views()
        g_boot[sl] = views[states]
        giving_up[sl] = _giving_up(trans, views[defaults], views[states])
        created = stop

    for w, wave in enumerate(sched.waves):
        day = (wave.date - plan.start).days
        create_until(day)
        upgrading = np.zeros(n_hosts, dtype=bool)
        upgrading[wave.hosts] = True
        idx = np.flatnonzero(upgrading[g_host[:created]])
        new_kernel = sched.kernel_after[w]
        new_type = types_of(new_kernel)
        dst = _place(sched, plan.placement, host_kernel, upgrading, wave.to, g_host[idx],
                     uniform(seed, idx, w + 1))
        ok = dst >= 0
        src_state = g_state[idx]
        out = np.full(idx.size, REFUSED, dtype=np.int8)
        nxt = src_state.copy()
        if ok.any():
            s, d = src_state[ok], host_type[dst[ok]]
            trans.ensure(s, d)
            out[ok] = trans.outcome[s, d]
            nxt[ok] = trans.next_state[s, d]
            counts["bytes_moved"] += int((trans.bytes[s, d] * pop.vcpus[idx[ok]]).sum())
        moved = ok & (out <= MIXED)
        stuck = ~moved
        counts["evacuations"] += int(ok.sum())
        counts["refused"] += int((ok & (out == REFUSED)).sum())
        counts["unsupported"] += int((out == UNSUPPORTED).sum())
        counts["stranded"] += int((~ok).sum())
        counts["lost_hops"] += int(((out == LOST) | (out == MIXED)).sum())
        counts["hosts_blocked"] += int(np.unique(g_host[idx[stuck]]).size)
        views = refresh_views()
        lost_t, gained_t = trans.drift_tables()
        mv = idx[moved]
        g_host[mv] = dst[moved]
        g_state[mv] = nxt[moved]
        ever_lost[mv] |= lost_t[g_boot[mv], views[g_state[mv]]]
        ever_gained[mv] |= gained_t[g_boot[mv], views[g_state[mv]]]
        host_kernel = new_kernel
        host_type = new_type
        if stuck.any():
            st_idx = idx[stuck]
            states, _ = creation_states(host_type[g_host[st_idx]])
            views = refresh_views()
            g_state[st_idx] = states
            g_boot[st_idx] = views[states]
        view_of = refresh_views()
        lost_t, _ = trans.drift_tables()
        live = slice(0, created)
        timeline.append({"wave": w + 1, "date": wave.date, "label": wave.label,
                         "rollback": wave.rollback, "hosts_changed": int(wave.hosts.size),
                         "guests": created, **{k: counts[k] for k in (
                             "evacuations", "refused", "unsupported", "stranded",
                             "hosts_blocked", "lost_hops")},
                         "broken_guests": int(ever_lost[live].sum()),
                         "broken_now": int(lost_t[g_boot[live], view_of[g_state[live]]].sum()),
                         "gained_guests": int(ever_gained[live].sum()),
                         "bytes_moved": counts["bytes_moved"]})
    create_until((plan.end - plan.start).days)
    view_of = refresh_views()
    lost_t, _ = trans.drift_tables()
    summary = {"hosts": n_hosts, "guests": created, **counts,
               "broken_guests": int(ever_lost.sum()),
               "broken_at_end": int(lost_t[g_boot, view_of[g_state]].sum()),
               "gained_guests": int(ever_gained.sum()),
               "giving_up_guests": int(giving_up.sum()),
               "states": len(trans.guests), "transitions": trans.computed}
    return summary, timeline


def _giving_up(trans: Transitions, default_views: np.ndarray, views: np.ndarray) -> np.ndarray:
    n = len(trans.views)
    table = np.array([[bool(d - v) for v in trans.views] for d in trans.views],
                     dtype=bool).reshape(n, n)
    return table[default_views, views]


def _place(sched: Schedule, rule: str, host_kernel: np.ndarray, upgrading: np.ndarray,
           target: int, src_hosts: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Destination host of each evacuated guest (-1: no host of its kind is left).

    Only hosts of the same VMM and CPU profile qualify (a QEMU stream cannot
    be restored by Firecracker; CPU compatibility is libvirt's baseline, not
    this model's), and only hosts outside the wave.
    """
    dst = np.full(src_hosts.size, -1, dtype=np.int64)
    if not src_hosts.size:
        return dst
    open_hosts = ~upgrading
    pools = len(sched.vmm) * len(sched.cpu)
    pool_of = sched.host_vmm.astype(np.int64) * len(sched.cpu) + sched.host_cpu
    key = host_kernel[src_hosts].astype(np.int64) * pools + pool_of[src_hosts]
    for k in np.unique(key).tolist():
        kernel, pool_id = divmod(k, pools)
        rows = np.flatnonzero(key == k)
        same_vmm = open_hosts & (pool_of == pool_id)
        prefs = {"same-release": [host_kernel == kernel],
                 "upgraded": [host_kernel == target, host_kernel == kernel],
                 "random": []}[rule]
        pool = np.zeros(0, dtype=np.int64)
        for mask in [*prefs, None]:
            pool = np.flatnonzero(same_vmm if mask is None else same_vmm & mask)
            if pool.size:
                break
        if pool.size:
            dst[rows] = pool[np.minimum((u[rows] * pool.size).astype(np.int64), pool.size - 1)]
    return dst


# -- the public entry point ------------------------------------------------------------------

@dataclass
class FleetResult:
    """Tidy records of a fleet simulation (pandas DataFrames)."""

    summary: Any
    timeline: Any
    hosts: Any
    baselines: dict = field(default_factory=dict)


def simulate(history: History, inventory: Inventory, plan: Plan,
             strategies: Sequence[str] = ("upstream",), vmms: Sequence[str | None] = (None,),
             configs: Sequence[str] = CONFIGS, guests: int | None = None,
             seed: int = 0) -> FleetResult:
    """Run the plan for every strategy, VMM (None: the inventory's) and configuration.

    Examples
    --------
    >>> import hcsim
    >>> from hcsim.analyses import fleet, inventory
    >>> h = hcsim.load("linux")
    >>> inv = inventory.load_inventory("data/fleet-example/inventory.toml", h)
    >>> plan = inventory.load_plan("data/fleet-example/plan.toml", h, inv)
    >>> r = fleet.simulate(h, inv, plan, ["upstream"], ["qemu"], guests=2000)
    >>> list(r.summary["config"])
    ['default', 'baseline']
    """
    import pandas as pd

    for c in configs:
        if c not in CONFIGS:
            raise InputError(f"unknown config {c!r} (known: {', '.join(CONFIGS)})")
    count = plan.guests.count if guests is None else guests
    if count < 0:
        raise InputError(f"guests must be >= 0, got {count}")
    rows, timeline, baselines = [], [], {}
    sched = None
    for spec in strategies:
        strategy = strategies_mod.parse(spec)
        trans = Transitions(history, strategy)
        for vmm_name in vmms:
            inv = inventory.with_vmm(vmm_name)
            sched = schedule(history, inv, plan, seed)
            pop = population(plan, inv.hosts, count, seed)
            label = vmm_name or INVENTORY_VMM
            settings: dict[tuple[str, str], Config | Setting] = {}
            for pool in _pools(sched):
                b = compute_baseline(history, strategy, vmm_mod.parse(pool[0]),
                                     _host_specs(sched, *pool))
                baselines[(strategy.spec, label, *pool)] = b
                settings[pool] = b.setting
            for config_name in configs:
                chosen = settings if config_name == "baseline" else \
                    dict.fromkeys(settings, frozenset())
                summary, tl = _run(history, sched, plan, pop, trans, chosen, seed)
                key = {"strategy": strategy.spec, "vmm": label, "config": config_name}
                rows.append({**key, **summary})
                timeline += [{**key, **t} for t in tl]
    hosts_rows = []
    if sched is not None:
        for w, wave in enumerate(sched.waves):
            counts = np.bincount(sched.kernel_after[w], minlength=len(sched.kernels))
            hosts_rows += [{"wave": w + 1, "date": wave.date, "kernel": k, "hosts": int(c)}
                           for k, c in zip(sched.kernels, counts.tolist())]
    return FleetResult(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)),
                       pd.DataFrame(timeline, columns=list(TIMELINE_COLUMNS)),
                       pd.DataFrame(hosts_rows, columns=["wave", "date", "kernel", "hosts"]),
                       baselines)


def _pools(sched: Schedule) -> list[tuple[str, str]]:
    """(VMM, CPU profile) pools of hosts that guests can move between."""
    pairs = np.unique(sched.host_vmm.astype(np.int64) * len(sched.cpu) + sched.host_cpu)
    return [(sched.vmm[p // len(sched.cpu)], sched.cpu[p % len(sched.cpu)]) for p in pairs.tolist()]


def _host_specs(sched: Schedule, vmm: str, cpu: str) -> list[HostSpec]:
    """Every kernel the hosts of a (VMM, CPU) pool run at some point of the plan."""
    mine = (sched.host_vmm == sched.vmm.index(vmm)) & (sched.host_cpu == sched.cpu.index(cpu))
    seen: dict[HostSpec, None] = {}
    for kernels in [sched.start_kernel, *sched.kernel_after]:
        for k in np.unique(kernels[mine]).tolist():
            seen.setdefault(HostSpec(sched.kernels[k], cpu), None)
    return list(seen)


# -- command line -------------------------------------------------------------------------------

def add_fleet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    p.add_argument("--inventory", required=True, metavar="FILE",
                   help="hosts: TOML or CSV (format: hcsim.analyses.inventory)")
    p.add_argument("--plan", required=True, metavar="FILE", help="rollout plan (TOML)")
    p.add_argument("--strategy", action="append", metavar="S",
                   help="NAME[:k=v,...]; repeat; default: upstream")
    p.add_argument("--vmm", action="append", metavar="V",
                   help="VMM policy for every host; repeat; default: the inventory's")
    p.add_argument("--config", action="append", metavar="C", choices=CONFIGS,
                   help="default | baseline; repeat; default: both")
    p.add_argument("--guests", type=commands.at_least(0), metavar="N", help="guests (default: the plan's)")
    p.add_argument("--seed", type=commands.at_least(0), default=0, metavar="K")
    p.add_argument("--format", default="text", metavar="F",
                   help="text (72 columns), csv, json, markdown")
    p.add_argument("--output", metavar="FILE", help="write the summary here (atomically)")
    p.add_argument("--timeline", metavar="FILE", help="also write the timeline as CSV")
    p.add_argument("--figure", metavar="FILE", help="also draw the timeline (PNG, SVG, PDF)")
    p.set_defaults(func=run_fleet)


def render(result: FleetResult, fmt: str) -> str:
    """The summary table as text (72 columns), csv, json or markdown."""
    records = result.summary.to_dict("records")
    if fmt == "csv":
        return tables.to_csv(SUMMARY_COLUMNS, records)
    if fmt == "json":
        return tables.to_json(records)
    if fmt == "markdown":
        return tables.to_markdown(SUMMARY_COLUMNS, records)
    cols = [("strategy", -18), ("vmm", -13), ("config", -8), ("broken", 7),
            ("refused", 7), ("blocked", 7), ("MiB", 6)]
    lines = []
    for r in records:
        name = r["strategy"]
        if len(name) > 18:          # a long spec gets its own line, as in the scorecard
            lines.append(name)
            name = ""
        lines.append(tables.fixed(cols, [[name, r["vmm"][:13], r["config"],
                                          str(r["broken_guests"]),
                                          str(r["refused"] + r["unsupported"] + r["stranded"]),
                                          str(r["hosts_blocked"]),
                                          f"{r['bytes_moved'] / (1 << 20):.0f}"]]
                                  ).splitlines()[1])
    head = tables.fixed(cols, [])
    if records:
        head = (f"fleet: {records[0]['hosts']} hosts, {records[0]['guests']} guests\n" + head)
    notes = ("broken: guests that lost a service they booted with.  refused:\n"
             "evacuations refused, unsupported or with no host.  blocked:\n"
             "host upgrades that could not drain.  MiB: migration streams.\n")
    return head + "".join(line + "\n" for line in lines) + notes


def run_fleet(args) -> int:
    tables.check_format(args.format)
    for out in (args.output, args.timeline, args.figure):
        commands.check_output(out)
    if args.figure and Path(args.figure).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"{args.figure}: the figure must be a .png, .svg or .pdf file")
    history = history_mod.load(args.history)
    inv = load_inventory(args.inventory, history)
    plan = load_plan(args.plan, history, inv)
    specs = args.strategy or ["upstream"]
    for spec in specs:
        strategies_mod.parse(spec)
    vmms = args.vmm or [None]
    for v in vmms:
        if v is not None:
            vmm_mod.parse(v)
        inv.with_vmm(v)
    result = simulate(history, inv, plan, specs, vmms, args.config or list(CONFIGS),
                      args.guests, args.seed)
    text = render(result, args.format)
    files = {}
    if args.timeline:
        files[args.timeline] = result.timeline.to_csv(index=False).encode()
    if args.figure:
        import io

        import matplotlib
        matplotlib.use("Agg")
        from hcsim.frontends import plots
        fig = plots.fleet_timeline(result.timeline, result.hosts)
        buf = io.BytesIO()
        fig.savefig(buf, format=Path(args.figure).suffix[1:].lower(), dpi=120)
        files[args.figure] = buf.getvalue()
    for path, data in files.items():      # everything is rendered: now write
        with commands.atomic_file(path, "wb") as fh:
            fh.write(data)
    commands.emit(text, args.output)
    return 0


# -- benchmark (hcsim bench --fleet) ----------------------------------------------------------

EXAMPLE = history_mod.data_path("fleet-example")


def bench(guests: int = 1_000_000, spec: str = "upstream", vmm: str = "qemu",
          repeat: int = 3, seed: int = 0) -> dict:
    """Time :func:`simulate` on ``data/fleet-example`` (10,000 hosts, 50 weekly waves).

    One run is one (strategy, VMM, configuration); each configuration is
    timed ``repeat`` times, best wall and CPU seconds reported (the machine
    is shared: the best is the figure to quote).  History and file loading
    and the pandas import are outside the timed region.
    """
    import time

    import pandas  # noqa: F401 - imported before timing

    history = history_mod.load("linux")
    inv = load_inventory(EXAMPLE / "inventory.toml", history)
    plan = load_plan(EXAMPLE / "plan.toml", history, inv)
    runs = []
    for config in CONFIGS:
        walls, cpus = [], []
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            result = simulate(history, inv, plan, [spec], [vmm], [config], guests, seed)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        row = result.summary.iloc[0]
        runs.append({"config": config, "wall_s": min(walls), "wall_worst_s": max(walls),
                     "cpu_s": min(cpus), "evacuations": int(row["evacuations"]),
                     "states": int(row["states"]), "transitions": int(row["transitions"])})
    return {"workload": {"hosts": inv.hosts, "guests": guests, "waves": sum(
                r.waves for r in plan.rollouts), "strategy": spec, "vmm": vmm, "seed": seed,
                "repeat": repeat}, "runs": runs}


def render_bench(r: dict) -> str:
    w = r["workload"]
    lines = [f"hcsim fleet on data/fleet-example: {w['hosts']:,} hosts, {w['guests']:,} guests,",
             f"{w['waves']} waves over a year; {w['strategy']} under {w['vmm']}, best of "
             f"{w['repeat']}", "",
             f"{'config':<10} {'wall s':>8} {'worst s':>8} {'CPU s':>7} {'evacuations':>12} "
             f"{'states':>6} {'hops':>5}"]
    for run in r["runs"]:
        lines.append(f"{run['config']:<10} {run['wall_s']:8.2f} {run['wall_worst_s']:8.2f} "
                     f"{run['cpu_s']:7.2f} {run['evacuations']:12,d} {run['states']:6d} "
                     f"{run['transitions']:5d}")
    lines += ["", "hops: distinct (state, destination) pairs run on the scalar spec."]
    return "\n".join(lines) + "\n"


def run_bench(args) -> str:
    """``hcsim bench --fleet``: the rendered benchmark (text or JSON)."""
    import json

    strategies_mod.parse(args.strategy)
    vmm_mod.parse(args.vmm)
    result = bench(10_000 if args.quick else 1_000_000, args.strategy, args.vmm,
                   1 if args.quick else args.repeat, args.seed)
    return json.dumps(result, indent=2) + "\n" if args.json else render_bench(result)


# -- scenarios for notebooks ----------------------------------------------------------------

def scenario(history: History, kernels: Sequence[str], hosts: int = 1000, vmm: str = "qemu",
             waves: int = 4, every: int = 7, rollback: bool = True, guests: int = 10000,
             start: dt.date = dt.date(2026, 1, 5), placement: str = "same-release",
             cpu: str | None = None) -> tuple[Inventory, Plan]:
    """One group of ``hosts`` hosts upgraded along ``kernels``, with a rollback.

    The hosts start on ``kernels[0]`` and roll out to each following kernel
    in ``waves`` waves ``every`` days apart; with ``rollback`` the last
    kernel is then rolled back to the one before it, and rolled out again.
    Guests (``guests``, half on the first day) run with 2, 4 or 8 vCPUs.
    """
    from hcsim.analyses.baseline import host_spec
    from hcsim.analyses.inventory import Group, GuestSpec, Rollout

    if len(kernels) < 2:
        raise InputError("scenario: give at least two kernels")
    cpu = [host_spec(history, k, cpu, "scenario") for k in kernels][0].cpu
    inv = Inventory("scenario", (Group("hosts", hosts, kernels[0], cpu, vmm),))
    day = start + dt.timedelta(days=every)
    steps = [(f"{a} -> {b}", b, a, False) for a, b in zip(kernels, kernels[1:])]
    if rollback:
        steps += [("rollback", kernels[-2], kernels[-1], True),
                  (f"{kernels[-1]} again", kernels[-1], kernels[-2], False)]
    rollouts = []
    for label, to, frm, back in steps:
        rollouts.append(Rollout(label, to, frm, ("hosts",), day, waves, every, back))
        day += dt.timedelta(days=every * (waves + 1))
    plan = Plan("scenario", start, day, placement, GuestSpec(guests, (2, 4, 8), 0.5),
                tuple(rollouts))
    return inv, plan
