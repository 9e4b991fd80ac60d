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

from hcsim.analyses.fleet.engine import scenario, simulate
from hcsim.analyses.fleet.model import (
    EXAMPLE,
    HostType,
    Population,
    Schedule,
    Transitions,
    Wave,
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

__all__ = ["CONFIGS", "EXAMPLE", "INVENTORY_VMM", "SUMMARY_COLUMNS", "TIMELINE_COLUMNS",
           "FleetResult", "HostType", "Population", "Schedule", "Transitions", "Wave",
           "population", "scenario", "schedule", "simulate", "uniform"]
