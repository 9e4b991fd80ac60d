"""``hcsim bench --fleet``: the 10,000-host, 1,000,000-guest year on the example fleet."""

from __future__ import annotations

from hcsim.analyses.fleet.engine import (
    _pools,  # noqa: F401
    simulate,
)
from hcsim.analyses.fleet.model import EXAMPLE
from hcsim.analyses.fleet.records import CONFIGS
from hcsim.analyses.inventory import load_inventory, load_plan
from hcsim.model import history as history_mod
from hcsim.model import strategies as strategies_mod
from hcsim.model import vmm as vmm_mod


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
