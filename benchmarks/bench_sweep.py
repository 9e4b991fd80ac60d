"""Sweep throughput: time ``hcsim sweep`` and say where a history's time goes.

    python benchmarks/bench_sweep.py                 # the issue-4 target
    python benchmarks/bench_sweep.py --histories 500 --profile-only

1. Runs ``hcsim sweep --histories K --releases N --output TMP.parquet`` (every
   strategy, every VMM policy, all cores) as a subprocess and prints its wall
   and CPU time.
2. In this process, on a few histories, splits the CPU time of one history
   by strategy: building the layout (``Strategy.layout``), the first
   ``score(evaluate(...))`` (which also builds the engine's per-layout arrays),
   and the other VMM policies' summaries.  The sum times K / cores estimates
   the sweep on an otherwise idle machine.

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

from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.measures import score
from hcsim.model import strategies, synthetic
from hcsim.model import vmm as vmm_mod


def run_sweep(histories: int, releases: int, jobs: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep.parquet"
        argv = ["hcsim", "sweep", "--histories", str(histories), "--releases", str(releases),
                "--output", str(out)]
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


def breakdown(histories: int, releases: int, jobs: int) -> None:
    params = synthetic.params(releases=releases)
    hs = [params.history(seed) for seed in range(histories)]
    vmms = [vmm_mod.parse(v) for v in vmm_mod.REGISTRY]
    clock = time.process_time
    rows, total = [], 0.0
    for spec in strategies.DEFAULTS:
        layout = first = rest = 0.0
        for h in hs:
            strategy = strategies.parse(spec)
            t0 = clock()
            strategy.layout(h)
            t1 = clock()
            score(evaluate(h, strategy, vmms[0], sets=False))
            t2 = clock()
            for vmm in vmms[1:]:
                score(evaluate(h, strategy, vmm, sets=False))
            t3 = clock()
            layout, first, rest = layout + t1 - t0, first + t2 - t1, rest + t3 - t2
        per = [1e3 * x / len(hs) for x in (layout, first, rest)]
        rows.append((spec, *per, sum(per)))
        total += sum(per)
    t0 = clock()
    for seed in range(histories):
        params.history(seed)
    gen = 1e3 * (clock() - t0) / histories
    total += gen
    print(f"\nCPU ms per history ({releases} releases, {len(vmms)} VMM policies), "
          f"mean of {histories} histories:")
    print(f"{'strategy':<22}{'layout':>8}{'1st VMM':>9}{'5 more':>8}{'total':>8}")
    for spec, lay, fst, rst, tot in rows:
        print(f"{spec:<22}{lay:8.2f}{fst:9.2f}{rst:8.2f}{tot:8.2f}")
    print(f"{'generate':<22}{'':25}{gen:8.2f}")
    print(f"{'all':<22}{'':25}{total:8.2f}")
    print(f"estimate for 10,000 histories on {jobs} idle cores: "
          f"{total * 10_000 / 1e3 / jobs:.0f} s (before pool and output overhead)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--histories", type=int, default=10_000)
    ap.add_argument("--releases", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--profile-histories", type=int, default=50)
    ap.add_argument("--profile-only", action="store_true")
    args = ap.parse_args()
    if not args.profile_only:
        run_sweep(args.histories, args.releases, args.jobs)
    breakdown(args.profile_histories, args.releases, args.jobs or os.cpu_count() or 1)


if __name__ == "__main__":
    main()
