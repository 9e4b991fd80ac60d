"""Sweep CPU per history of an older commit and of this tree, run at the same time.

    python benchmarks/side_by_side.py 9c0a21b --drift linux
    python benchmarks/side_by_side.py 9ab4509 --drift none --rounds 8

This virtual machine's speed drifts by 1.3-1.8x within minutes, more than
most changes being measured, so running old and new code one after the
other compares machine phases, not code.  Here both run at once, one
process per core: the old commit in a detached ``git worktree`` (first on
``PYTHONPATH``), this tree in the other.  Each warms up, asks every policy
about every id drift can draw (where the code has ``synthetic.drift_ids``),
then times ``sweep.run(HISTORIES, releases=100, jobs=1)`` for ``ROUNDS``
rounds and prints the median CPU ms per history.  The cores of this
machine are not equally fast either, so each process is pinned to one core
(``os.sched_setaffinity``) and the run is done twice, the cores swapped;
the medians are over both halves.  Each tree sweeps its own
defaults (every strategy and VMM policy it has: six policies before
``qemu-compat``, seven since); an old commit without drift is run without.
Each process checks that every ``hcsim`` module it ran is its own tree's
(an editable install of this checkout would otherwise supply the modules
an old tree lacks) and the run fails if not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Run in each process; works with the package layouts of older commits.
MEASURE = r"""
import importlib, json, os, statistics, sys, time
import hcsim
base = os.path.dirname(hcsim.__file__)
flat = os.path.exists(os.path.join(base, "sweep.py"))          # before the layers
sweep = importlib.import_module("hcsim.sweep" if flat else "hcsim.analyses.sweep")
synthetic = importlib.import_module("hcsim.synthetic" if flat else "hcsim.model.synthetic")
vmm_mod = importlib.import_module("hcsim.vmm" if flat else "hcsim.model.vmm")
drift, rounds, histories = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
presets = getattr(synthetic, "DRIFT_PRESETS", {})
extra = dict(presets[drift]) if drift in presets and drift != "none" else {}
kw = dict(releases=100, jobs=1, **extra)
if extra and hasattr(synthetic, "drift_ids"):
    for name in vmm_mod.REGISTRY:
        vmm_mod.facts(vmm_mod.parse(name), synthetic.drift_ids())
sweep.run(10, seed=99999, **kw)
out = []
for k in range(rounds):
    t = time.process_time()
    sweep.run(histories, seed=5000 + histories * k, **kw)
    out.append((time.process_time() - t) / histories * 1e3)
# every hcsim module must be the tree's own: an editable install of another
# checkout supplies the modules an old tree lacks, silently
root = os.path.dirname(base) + os.sep
foreign = sorted(n for n, m in list(sys.modules.items()) if n.split(".")[0] == "hcsim"
                 and getattr(m, "__file__", None) and not m.__file__.startswith(root))
print(json.dumps({"tree": base, "drift": bool(extra), "median": statistics.median(out),
                  "rounds": out, "foreign": foreign}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="a commit (hash, tag or branch) to compare with this tree")
    ap.add_argument("--drift", default="linux", choices=("linux", "none"))
    ap.add_argument("--rounds", type=int, default=8, help="rounds per half (cores swapped)")
    ap.add_argument("--histories", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.old], check=True, capture_output=True)
        try:
            argv = [args.drift, str(args.rounds), str(args.histories)]
            cores = sorted(os.sched_getaffinity(0))[:2]
            got = []
            for half in (cores, cores[::-1]):
                runs = []
                for tree, core in zip((old, ROOT), half):
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    runs.append(subprocess.Popen(
                        [sys.executable, "-c", MEASURE, *argv], env=env, stdout=subprocess.PIPE,
                        text=True, cwd=tmp,
                        preexec_fn=lambda core=core: os.sched_setaffinity(0, {core})))
                got.append([json.loads(p.communicate()[0]) for p in runs])
                if any(p.returncode for p in runs):
                    print("side_by_side: a measuring process failed", file=sys.stderr)
                    return 1
                for r in got[-1]:
                    if r["foreign"]:
                        print(f"side_by_side: {r['tree']} ran modules of another checkout: "
                              f"{', '.join(r['foreign'])}", file=sys.stderr)
                        return 1
            got = [{**a, "rounds": a["rounds"] + b["rounds"],
                    "median": statistics.median(a["rounds"] + b["rounds"])}
                   for a, b in zip(*got)]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)
    print(f"CPU ms per history, median of 2 x {args.rounds} rounds of {args.histories} "
          f"histories at 100 releases, both at once, cores swapped between the halves:")
    for label, r in zip((args.old, "this tree"), got):
        drift = "drift linux" if r["drift"] else "no drift"
        print(f"  {label:<12} {r['median']:7.1f}  ({drift}; rounds "
              f"{' '.join(f'{x:.1f}' for x in r['rounds'])})")
    print(f"  ratio {got[0]['median'] / got[1]['median']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
