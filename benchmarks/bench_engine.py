"""Regenerate the engine benchmark tables of README.md (markdown on stdout).

    python benchmarks/bench_engine.py                  # measure now (about a minute)
    python benchmarks/bench_engine.py --from run.json  # tables of a saved `hcsim bench --json`
    python benchmarks/bench_engine.py --quick          # tiny sizes, to check the script

The figures are those of ``hcsim bench`` (:mod:`hcsim.frontends.bench`): best of
at least ``--repeat`` runs (and of half a second) on a shared machine,
with the spread (worst / best).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hcsim.frontends import bench  # noqa: E402


def fmt(x: float) -> str:
    return f"{x:.3g}"


def markdown(r: dict) -> str:
    w = r["workload"]
    out = [f"Workload: `{w['history']}`, {w['releases']} releases, {w['services']} services "
           f"({w['epochs']} epochs), `{w['strategy']}` under `{w['vmm']}`; best of "
           f">= {r['repeat']} runs and >= {bench.MIN_SECONDS:g} s (spread = worst/best), "
           f"{platform.machine()}, "
           f"Python {platform.python_version()}.", "",
           "| measure | pairs | pairs/s | spread |", "|---|---:|---:|---:|"]
    for key, label in (("scalar", "scalar spec (sampled pairs)"),
                       ("engine", "engine, dense counts (every pair)"),
                       ("engine_compressed", "engine, counts with release compression"),
                       ("evaluate", "engine, dense evaluate (sets materialised)")):
        m = r[key]
        out.append(f"| {label} | {fmt(m['pairs'])} | {fmt(m['pairs_per_s'])} | {m['spread']:.2f} |")
    out += ["", f"Speedup over the spec: **{r['speedup']:,.0f}x** dense, "
            f"**{r['speedup_compressed']:,.0f}x** compressed; engine and spec agree on "
            f"every sampled pair: {'yes' if r['agree'] else 'NO'}.", "",
            "| releases | pairs | counts pairs/s | peak RSS MiB | evaluate pairs/s | peak RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|"]
    for s in r["sizes"]:
        out.append(f"| {s['releases']} | {fmt(s['counts']['pairs'])} | "
                   f"{fmt(s['counts']['pairs_per_s'])} | {s['counts_rss_mib']:.0f} | "
                   f"{fmt(s['evaluate']['pairs_per_s'])} | {s['evaluate_rss_mib']:.0f} |")
    st = r["streaming"]
    out.append(f"| {st['releases']} | {fmt(st['pairs'])} | {fmt(st['pairs_per_s'])} | "
               f"{st['peak_rss_mib']:.0f} | (streaming) | |")
    il = r["interleaved"]
    out += ["", f"Interleaved in one process ({il['rounds']} rounds, each timing every size): "
            + ", ".join(f"{k} releases {fmt(v)}" for k, v in il["pairs_per_s"].items())
            + f" dense pairs/s; fastest size / slowest **{il['ratio']:.2f}x**."]
    out += ["", f"| strategy (under `{w['vmm']}`) | dense pairs/s | compressed pairs/s |",
            "|---|---:|---:|"]
    for s in r["strategies"]:
        out.append(f"| `{s['strategy']}` | {fmt(s['dense_pairs_per_s'])} | "
                   f"{fmt(s['compressed_pairs_per_s'])} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="source", metavar="FILE",
                   help="render a saved `hcsim bench --json` instead of measuring")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.source:
        result = json.loads(Path(args.source).read_text())
    elif args.quick:
        result = bench.run(releases=100, scalar_pairs=50, repeat=1, sizes=bench.QUICK_SIZES,
                           stream=bench.QUICK_STREAM)
    else:
        result = bench.run(repeat=args.repeat)
    sys.stdout.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
