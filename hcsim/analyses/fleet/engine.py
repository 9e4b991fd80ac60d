"""The fleet engine: waves applied to hosts, guests evacuated and placed, with
numpy-moved guests and memoised transitions (see :mod:`hcsim.analyses.fleet`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from hcsim.analyses.baseline import HostSpec
from hcsim.analyses.baseline import compute as compute_baseline
from hcsim.analyses.fleet.model import (
    HostType,
    Population,
    Schedule,
    Transitions,
    population,
    schedule,
    uniform,
)
from hcsim.analyses.fleet.records import (
    CONFIGS,
    INVENTORY_VMM,
    SUMMARY_COLUMNS,
    TIMELINE_COLUMNS,
    FleetResult,
)
from hcsim.analyses.inventory import Inventory, Plan
from hcsim.errors import InputError
from hcsim.evaluation.outcomes import LOST, MIXED, REFUSED, UNSUPPORTED
from hcsim.model import strategies as strategies_mod
from hcsim.model import vmm as vmm_mod
from hcsim.model.config import Config, Setting
from hcsim.model.history import History

# -- memoised transitions ------------------------------------------------------------


# -- the schedule of host kernels ----------------------------------------------------


# -- hashing for placement ---------------------------------------------------------------


# -- guests ---------------------------------------------------------------------------


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


# -- benchmark (hcsim bench --fleet) ----------------------------------------------------------


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
