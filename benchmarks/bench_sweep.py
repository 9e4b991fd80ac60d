"""Sweep throughput: time ``hcsim sweep`` and say where a history's time goes.

    python benchmarks/bench_sweep.py --drift linux   # the issue-11 target
    python benchmarks/bench_sweep.py --histories 500 --profile-only

1. Runs ``hcsim sweep --histories K --releases N [--drift D] --output
   TMP.parquet`` (every strategy, every VMM policy, all cores) as a
   subprocess and prints its wall and CPU time.
2. In this process, on a few histories (after as many to warm the per-id
   memos, as in a long sweep), splits the CPU time of one history the way
   the sweep spends it: generating it, building each strategy's layout, the
   engine's model of each (strategy, VMM) (:func:`hcsim.evaluation.engine.model`:
   the layout's arrays and the whole-list tables), counting the pairs of
   every strategy and policy together (:func:`hcsim.evaluation.engine.tallies`) and
   the scorecard, with the
   sweep's own :class:`hcsim.analyses.sweep.Rows` (the cost at the last
   release once per history, pickup and exhaustion once per strategy, the
   shares of every row from the stacked counts, and forgetting the
   history as the sweep does: :func:`hcsim.evaluation.engine.forget`).  The sum
   times K / cores estimates the sweep on an otherwise idle machine.

CPU times (not wall) are used for the breakdown so that other load on the
machine does not inflate them.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hcsim.analyses import sweep
from hcsim.evaluation import engine
from hcsim.model import strategies, synthetic
from hcsim.model import vmm as vmm_mod
from hcsim.model.synthetic import DRIFT_PRESETS


def run_sweep(histories: int, releases: int, jobs: int | None, drift: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep.parquet"
        argv = ["hcsim", "sweep", "--histories", str(histories), "--releases", str(releases),
                "--output", str(out)]
        if drift != "none":
            argv += ["--drift", drift]
        if jobs:
            argv += ["--jobs", str(jobs)]
        print("$", " ".join(argv).replace(str(out), "sweep.parquet"))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hcsim.frontends.cli", *argv[1:]], check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        size = out.stat().st_size
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s (all processes), "
          f"output {size / 1e6:.1f} MB, load average {os.getloadavg()[0]:.2f}")


def breakdown(histories: int, releases: int, jobs: int, drift: str) -> None:
    params = synthetic.params(releases=releases, **DRIFT_PRESETS[drift])
    vmms = [vmm_mod.parse(v) for v in vmm_mod.REGISTRY]
    clock = time.process_time
    parts = dict.fromkeys(("generate", "layout", "model", "tally", "score"), 0.0)
    # A long sweep's workers have met every id drift can draw; a short warm-up
    # has not, so each policy is asked about all of them first (vmm.facts).
    for vmm in vmms:
        vmm_mod.facts(vmm, synthetic.drift_ids())
    for warm in (True, False):
        rows = None
        for seed in range(histories):
            t0 = clock()
            h = params.history(seed + (0 if warm else histories))
            t = dict.fromkeys(parts, 0.0)
            t["generate"] = clock() - t0
            if rows is None:        # one per batch of histories, as the sweep's tasks
                chosen = [strategies.parse(spec) for spec in strategies.DEFAULTS]
                rows = sweep.Rows(chosen, vmms, 1)
            t0 = clock()
            for strategy in chosen:
                strategy.layout(h)
            t1 = clock()
            rows.history(seed, h)
            t["layout"], t["score"] = t1 - t0, clock() - t1
            t0 = clock()
            for strategy in chosen:
                for vmm in vmms:
                    engine.model(h, strategy, vmm)
            t1 = clock()
            got = engine.tallies(h, chosen, vmms)    # every strategy and policy counted together
            t2 = clock()
            for row in got:
                for counted, refused in row:
                    rows.add(counted, refused)
            engine.forget(h, chosen)                # as the sweep does once a history is counted
            t3 = clock()
            for k, dt in (("model", t1 - t0), ("tally", t2 - t1), ("score", t3 - t2)):
                t[k] += dt
            if len(rows.seeds) == sweep.MAX_AUTO_BATCH or seed == histories - 1:
                t0 = clock()
                rows.columns()
                t["score"] += clock() - t0
                rows = None
            if not warm:
                for k, dt in t.items():
                    parts[k] += dt
    total = sum(parts.values())
    print(f"\nCPU ms per history ({releases} releases, drift {drift}, "
          f"{len(strategies.DEFAULTS)} strategies x {len(vmms)} VMM policies), "
          f"mean of {histories} histories after {histories} to warm up:")
    for k, v in parts.items():
        print(f"{k:<10}{1e3 * v / histories:8.2f}")
    print(f"{'all':<10}{1e3 * total / histories:8.2f}")
    print(f"estimate for 10,000 histories on {jobs} idle cores: "
          f"{total / histories * 10_000 / jobs:.0f} s (before pool and output overhead)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--histories", type=int, default=10_000)
    ap.add_argument("--releases", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--drift", default="none", choices=sorted(DRIFT_PRESETS))
    ap.add_argument("--profile-histories", type=int, default=50)
    ap.add_argument("--profile-only", action="store_true")
    args = ap.parse_args()
    if not args.profile_only:
        run_sweep(args.histories, args.releases, args.jobs, args.drift)
    breakdown(args.profile_histories, args.releases, args.jobs or os.cpu_count() or 1,
              args.drift)


if __name__ == "__main__":
    main()
