"""CPU time to generate one synthetic history (the first stage of a sweep).

    python benchmarks/bench_generate.py                      # this checkout
    python benchmarks/bench_generate.py --against /tmp/old   # alternated A/B

Times ``Params.history(seed)`` for ``--seeds`` seeds (after one to warm up)
with ``time.process_time()``, in a fresh process per round.  With
``--against DIR`` (another checkout, e.g. ``git worktree add --detach
/tmp/old main``) the rounds alternate between the two trees, so that a drift
of the machine's speed over minutes hits both alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def once(releases: int, drift: str, seeds: int) -> float:
    """CPU ms per history in this process."""
    from hcsim.model import synthetic
    p = synthetic.params(releases=releases, **synthetic.DRIFT_PRESETS[drift])
    p.history(0)
    start = time.process_time()
    for seed in range(1, seeds + 1):
        p.history(seed)
    return (time.process_time() - start) / seeds * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=100)
    ap.add_argument("--drift", default="linux", choices=("linux", "none"))
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--against", type=Path, help="another checkout to alternate with")
    ap.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.once:
        print(f"{once(args.releases, args.drift, args.seeds):.3f}")
        return
    trees = {"this": HERE, **({"against": args.against.resolve()} if args.against else {})}
    argv = [sys.executable, __file__, "--once", "--releases", str(args.releases),
            "--drift", args.drift, "--seeds", str(args.seeds)]
    ms: dict[str, list[float]] = {k: [] for k in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
            ms[name].append(float(out.stdout))
    for name, tree in trees.items():
        runs = " ".join(f"{v:.2f}" for v in ms[name])
        print(f"{name:8s} {tree}: median {sorted(ms[name])[len(ms[name]) // 2]:.2f} "
              f"CPU ms per history (rounds: {runs})")


if __name__ == "__main__":
    main()
