"""``hcsim bench``: the scalar spec and the vectorised engine on one workload.

The workload is a synthetic history (:func:`hcsim.model.synthetic.generate`) of
1000 releases cut to its first 64 services, with ``PSCI_VERSION`` bumps
(about one per hundred releases), under ``upstream`` and ``qemu``.  In one
run it measures, in pair-evaluations (one (source, destination) migration
each) per second:

* the scalar spec (:func:`hcsim.evaluation.spec.migrate`) on a random sample of
  pairs, extrapolated as pairs/s;
* the engine's dense per-pair kernel (:func:`hcsim.evaluation.engine.counts` with
  ``compress=False``, streaming), its default mode with release compression,
  and :func:`hcsim.evaluation.engine.evaluate` (outcome and packed sets materialised);
* the speedup, and whether engine and spec agree on every sampled pair;
* the dense kernel at three sizes (about 1e5, 1e6 and 1e7 pairs: 316, 1000
  and 3162 releases, 64 services each) and a 1e8-pair streaming reduction
  (10000 releases), each in a fresh process so its peak RSS
  (``resource.getrusage``) is its own;
* every strategy under ``qemu`` at the 1e6 size.

Timings are the best of at least ``--repeat`` runs (and, above one, of as
many as half a second takes: :data:`MIN_SECONDS`), with the spread
(worst / best); the machine is shared, so the best is the figure to quote.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable

import numpy as np

from hcsim import limits
from hcsim.errors import InputError
from hcsim.evaluation import engine
from hcsim.evaluation.spec import migrate
from hcsim.files import check_output, emit
from hcsim.model import strategies, synthetic
from hcsim.model import vmm as vmm_mod
from hcsim.model.history import History

SERVICES = 64
SIZES = (316, 1000, 3162)           # releases: ~1e5, 1e6, 1e7 pairs
STREAM = 10_000                     # releases: 1e8 pairs
QUICK_SIZES = (20, 40, 60)
QUICK_STREAM = 100
KEYS = ("workload", "scalar", "engine", "engine_compressed", "evaluate", "speedup",
        "speedup_compressed", "agree", "sizes", "interleaved", "streaming", "strategies",
        "peak_rss_mib", "repeat")
#: Rounds of :func:`interleaved`, and the least time one size takes per round.
ROUNDS = 12
ROUND_SECONDS = 0.02


def workload(releases: int = 1000, services: int = SERVICES, seed: int = 0,
             drift: bool = True) -> History:
    """A synthetic history of ``releases`` releases and exactly ``services`` services.

    Arrivals are drawn at 1.5 x the needed rate and the history is cut to its
    first ``services`` services (in order of introduction), so they spread
    over about two thirds of the releases; ``registers_from`` is at 30 %.
    With ``drift`` (the default) the history also has other registers that
    drift at the rates fitted to Linux (``synthetic.LINUX_DRIFT``), so the
    engine runs its whole-list rule (DESIGN.md section 9).
    """
    rate = 1.5 * services / releases
    extra = synthetic.LINUX_DRIFT if drift else {}
    for _ in range(20):
        h = synthetic.generate(releases=releases, rate=rate, seed=seed, burst=0.0,
                               registers_from=0.3, firmware=min(1.0, 10 / releases),
                               name=f"bench-{releases}x{services}", **extra)
        if len(h.services) >= services:
            return dataclasses.replace(h, services=h.services[:services])
        rate *= 2
    raise InputError(f"could not draw {services} services over {releases} releases")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: With ``repeat > 1``, a figure's runs go on until they have taken this long
#: (at most :data:`MAX_RUNS`): five runs of a millisecond (the 1e5-pair size)
#: measured 8e7 pairs/s where fifty measured 1.2e8 in the same fresh process,
#: while five runs of 80 ms (1e7 pairs) already settle; equal time, not equal
#: counts, makes the sizes comparable.
MIN_SECONDS = 0.5
MAX_RUNS = 1000


def timed(fn: Callable[[], object], repeat: int, seconds: float | None = None
          ) -> tuple[float, float, int]:
    """(best, worst) wall time of at least ``repeat`` calls and of as many as
    ``seconds`` takes (default :data:`MIN_SECONDS` with ``repeat > 1``, else
    none; at most :data:`MAX_RUNS`), and how many calls."""
    if seconds is None:
        seconds = MIN_SECONDS if repeat > 1 else 0.0
    times: list[float] = []
    while len(times) < repeat or (sum(times) < seconds and len(times) < MAX_RUNS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), max(times), len(times)


def rate(pairs: int, best: float, worst: float, runs: int = 1) -> dict:
    return {"pairs": pairs, "seconds": round(best, 6), "pairs_per_s": pairs / best,
            "spread": round(worst / best, 3), "runs": runs}


def _size_worker(job: tuple) -> dict:
    """One size in a fresh process: dense counts (and evaluate), and its own peak RSS."""
    releases, spec, vmm, seed, repeat, with_evaluate = job
    h = workload(releases, SERVICES, seed)
    strategy, policy = strategies.parse(spec), vmm_mod.parse(vmm)
    pairs = releases * releases
    engine.counts(h, strategy, policy, compress=False)           # warm the layout cache
    row = {"releases": releases,
           "counts": rate(pairs, *timed(lambda: engine.counts(h, strategy, policy,
                                                               compress=False), repeat))}
    row["counts_rss_mib"] = round(peak_rss_mib(), 1)
    if with_evaluate:
        row["evaluate"] = rate(pairs, *timed(lambda: engine.evaluate(h, strategy, policy,
                                                                     compress=False), repeat))
        row["evaluate_rss_mib"] = round(peak_rss_mib(), 1)
    return row


def interleaved(sizes: tuple[int, ...], spec: str, vmm: str, seed: int, rounds: int = ROUNDS
                ) -> dict:
    """Dense counts of every size, round-robin in this process: each round
    times every size once (as many calls as :data:`ROUND_SECONDS` takes), and
    each size's figure is its best call over the rounds.  The machine's speed
    drifts over seconds, so sizes measured one after the other (the fresh
    processes of the size table) compare its phases; interleaved, a phase
    slows every size alike.  ``ratio``: the best size's rate over the worst's.
    """
    strategy, policy = strategies.parse(spec), vmm_mod.parse(vmm)
    jobs = []
    for releases in sizes:
        h = workload(releases, SERVICES, seed)
        engine.counts(h, strategy, policy, compress=False)       # warm the layout cache
        jobs.append((releases, lambda h=h: engine.counts(h, strategy, policy, compress=False)))
    best = dict.fromkeys(sizes, float("inf"))
    for _ in range(rounds):
        for releases, fn in jobs:
            best[releases] = min(best[releases], timed(fn, 1, ROUND_SECONDS)[0])
    rates = {releases: releases * releases / best[releases] for releases in sizes}
    return {"rounds": rounds, "pairs_per_s": {str(k): v for k, v in rates.items()},
            "ratio": max(rates.values()) / min(rates.values())}


def _isolated(job: tuple) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_size_worker, (job,))


def agreement(h: History, strategy, policy, pairs: np.ndarray) -> int:
    """Pairs of the sample where the engine (both modes) and the spec differ."""
    results = [engine.evaluate(h, strategy, policy, compress=c) for c in (True, False)]
    bad = 0
    for s, d in pairs.tolist():
        want = migrate(h, strategy, policy, s, d)
        for r in results:
            got = r.migration(s, d)
            bad += (want.outcome, want.gained, want.lost) != (got.outcome, got.gained, got.lost)
    return bad


def run(releases: int = 1000, scalar_pairs: int = 2000, repeat: int = 3, seed: int = 0,
        sizes: tuple[int, ...] = SIZES, stream: int = STREAM, spec: str = "upstream",
        vmm: str = "qemu", progress: bool = False) -> dict:
    """Measure everything; the dict that ``hcsim bench --json`` prints."""
    from tqdm import tqdm

    steps = tqdm(total=6 + len(sizes) + len(strategies.DEFAULTS), disable=not progress,
                 desc="bench", unit="step", file=sys.stderr)
    h = workload(releases, SERVICES, seed)
    strategy, policy = strategies.parse(spec), vmm_mod.parse(vmm)
    n = len(h.releases)
    pairs = n * n
    out: dict = {"workload": {"history": h.name, "releases": n, "services": len(h.services),
                              "firmware_values": sum(len(f.values) for f in h.firmware),
                              "registers_from": h.registers_from, "seed": seed,
                              "strategy": strategy.spec, "vmm": policy.name,
                              "epochs": int(len(engine.model(h, strategy, policy).arrays.starts))},
                 "repeat": repeat}
    rng = np.random.default_rng(seed)
    sample = rng.integers(0, n, (scalar_pairs, 2))
    best = worst = 0.0
    runs = max(1, min(repeat, 2))
    for _ in range(runs):
        t = time.perf_counter()
        for s, d in sample.tolist():
            migrate(h, strategy, policy, s, d)
        took = time.perf_counter() - t
        best, worst = (took, max(worst, took)) if not best or took < best else (best, max(worst, took))
    out["scalar"] = rate(scalar_pairs, best, worst, runs)
    steps.update()
    out["engine"] = rate(pairs, *timed(lambda: engine.counts(h, strategy, policy, compress=False),
                                       repeat))
    out["engine"]["mode"] = "dense counts (every pair, streaming)"
    steps.update()
    out["engine_compressed"] = rate(pairs, *timed(lambda: engine.counts(h, strategy, policy),
                                                  repeat))
    out["engine_compressed"]["mode"] = "counts with release compression (default)"
    steps.update()
    out["evaluate"] = rate(pairs, *timed(lambda: engine.evaluate(h, strategy, policy,
                                                                 compress=False), repeat))
    out["evaluate"]["mode"] = "dense evaluate (outcome and packed sets materialised)"
    steps.update()
    scalar_rate = out["scalar"]["pairs_per_s"]
    out["speedup"] = out["engine"]["pairs_per_s"] / scalar_rate
    out["speedup_compressed"] = out["engine_compressed"]["pairs_per_s"] / scalar_rate
    bad = agreement(h, strategy, policy, sample[: min(scalar_pairs, 500)])
    out["agree"] = bad == 0
    out["disagreements"] = bad
    steps.update()
    out["sizes"] = []
    for size in sizes:
        out["sizes"].append(_isolated((size, spec, vmm, seed, repeat, True)))
        steps.update()
    out["interleaved"] = interleaved(sizes, spec, vmm, seed, ROUNDS if repeat > 1 else 1)
    steps.update()
    row = _isolated((stream, spec, vmm, seed, max(1, min(repeat, 2)), False))
    out["streaming"] = {"releases": stream, **row["counts"], "peak_rss_mib": row["counts_rss_mib"]}
    out["strategies"] = []
    for name in strategies.DEFAULTS:
        st = strategies.parse(name)
        engine.counts(h, st, policy)                              # build the layout once
        dense = rate(pairs, *timed(lambda st=st: engine.counts(h, st, policy, compress=False),
                                   repeat))
        comp = rate(pairs, *timed(lambda st=st: engine.counts(h, st, policy), repeat))
        out["strategies"].append({"strategy": st.spec, "vmm": policy.name,
                                  "dense_pairs_per_s": dense["pairs_per_s"],
                                  "dense_spread": dense["spread"],
                                  "compressed_pairs_per_s": comp["pairs_per_s"],
                                  "compressed_spread": comp["spread"]})
        steps.update()
    steps.close()
    out["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return out


def render(r: dict) -> str:
    """The text report (72 columns)."""
    w = r["workload"]
    lines = [f"hcsim bench: {w['history']} ({w['releases']} releases, {w['services']} services, "
             f"{w['epochs']} epochs),",
             f"{w['strategy']} under {w['vmm']}; best of >= {r['repeat']} runs"
             + (f" and >= {MIN_SECONDS:g} s" if r["repeat"] > 1 else "") + " (spread = worst/best)",
             "",
             f"{'':<34} {'pairs':>9} {'pairs/s':>10} {'spread':>6}"]

    def row(label: str, m: dict) -> None:
        lines.append(f"{label:<34} {m['pairs']:>9.3g} {m['pairs_per_s']:>10.3g} "
                     f"{m['spread']:>6.2f}")

    row("scalar spec (sampled pairs)", r["scalar"])
    row("engine, dense counts", r["engine"])
    row("engine, compressed counts", r["engine_compressed"])
    row("engine, dense evaluate", r["evaluate"])
    lines += [f"speedup over the spec: {r['speedup']:,.0f}x dense, "
              f"{r['speedup_compressed']:,.0f}x compressed",
              f"engine and spec agree on the sampled pairs: {'yes' if r['agree'] else 'NO'}", "",
              "dense kernel by size (each in a fresh process)",
              f"{'releases':>8} {'pairs':>9} {'counts/s':>10} {'RSS MiB':>8} "
              f"{'evaluate/s':>10} {'RSS MiB':>8}"]
    for s in r["sizes"]:
        ev = s.get("evaluate")
        lines.append(f"{s['releases']:>8} {s['counts']['pairs']:>9.3g} "
                     f"{s['counts']['pairs_per_s']:>10.3g} {s['counts_rss_mib']:>8.0f} "
                     f"{ev['pairs_per_s'] if ev else float('nan'):>10.3g} "
                     f"{s.get('evaluate_rss_mib', float('nan')):>8.0f}")
    st, il = r["streaming"], r["interleaved"]
    lines += [f"{st['releases']:>8} {st['pairs']:>9.3g} {st['pairs_per_s']:>10.3g} "
              f"{st['peak_rss_mib']:>8.0f}   (streaming counts)",
              f"interleaved in one process ({il['rounds']} rounds): "
              + ", ".join(f"{k} releases {v:.3g}" for k, v in il["pairs_per_s"].items()),
              f"  dense counts/s, fastest size / slowest: {il['ratio']:.2f}x", "",
              f"every strategy under {w['vmm']}, {w['releases']} releases",
              f"{'strategy':<24} {'dense pairs/s':>14} {'compressed':>12}"]
    for s in r["strategies"]:
        lines.append(f"{s['strategy']:<24} {s['dense_pairs_per_s']:>14.3g} "
                     f"{s['compressed_pairs_per_s']:>12.3g}")
    lines += ["", f"peak RSS of this process: {r['peak_rss_mib']:.0f} MiB"]
    return "\n".join(lines) + "\n"


def add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (100 releases, 20..60 by size, 100 streamed): a smoke test")
    p.add_argument("--repeat", type=limits.argtype("repeat", 1, limits.REPEAT), default=3,
                   metavar="N", help="timed runs per figure; the best is reported "
                                     f"(default 3; cap {limits.REPEAT:,})")
    p.add_argument("--scalar-pairs", type=limits.argtype("scalar-pairs", 1,
                                                         limits.SCALAR_PAIRS),
                   default=2000, metavar="N",
                   help=f"pairs the scalar spec evaluates (default 2000; cap "
                        f"{limits.SCALAR_PAIRS:,})")
    p.add_argument("--seed", type=limits.argtype("seed", 0, limits.SEED_MAX), default=0,
                   metavar="K", help="workload seed (0..2**63-1)")
    p.add_argument("--strategy", default="upstream", metavar="S")
    p.add_argument("--vmm", default="qemu", metavar="V")
    p.add_argument("--output", metavar="FILE", help="write here (atomically)")
    p.add_argument("--fleet", action="store_true",
                   help="time hcsim fleet instead (data/fleet-example: 10,000 hosts, "
                        "1,000,000 guests; --quick: 10,000 guests)")
    p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    check_output(args.output)           # before minutes of benchmarking
    if args.fleet:
        from hcsim.frontends import fleet_bench
        emit(fleet_bench.run_bench(args), args.output)
        return 0
    strategies.parse(args.strategy)
    vmm_mod.parse(args.vmm)
    if args.quick:
        kw = {"releases": 100, "scalar_pairs": min(args.scalar_pairs, 50), "repeat": 1,
              "sizes": QUICK_SIZES, "stream": QUICK_STREAM}
    else:
        kw = {"scalar_pairs": args.scalar_pairs, "repeat": args.repeat}
    result = run(seed=args.seed, spec=args.strategy, vmm=args.vmm,
                 progress=sys.stderr.isatty(), **kw)
    text = json.dumps(result, indent=2) + "\n" if args.json else render(result)
    emit(text, args.output)
    return 0
