"""``hcsim bench``: its JSON report has every figure, and engine and spec agree."""

from __future__ import annotations

import json

import numpy as np

from hcsim.evaluation import engine, spec
from hcsim.frontends import bench, cli
from hcsim.model.strategies import DEFAULTS
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm


def test_bench_quick_json_has_every_figure(capsys):
    assert cli.main(["bench", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(bench.KEYS) <= set(report)
    assert report["workload"]["services"] == bench.SERVICES
    assert report["agree"] is True and report["disagreements"] == 0
    for key in ("scalar", "engine", "engine_compressed", "evaluate"):
        assert report[key]["pairs_per_s"] > 0 and report[key]["spread"] >= 1
    assert [s["releases"] for s in report["sizes"]] == list(bench.QUICK_SIZES)
    assert all(s["counts"]["pairs"] == s["releases"] ** 2 for s in report["sizes"])
    il = report["interleaved"]
    assert list(il["pairs_per_s"]) == [str(n) for n in bench.QUICK_SIZES]
    assert il["ratio"] == max(il["pairs_per_s"].values()) / min(il["pairs_per_s"].values())
    assert report["streaming"]["pairs"] == bench.QUICK_STREAM ** 2
    assert report["streaming"]["peak_rss_mib"] > 0
    assert [s["strategy"] for s in report["strategies"]] == list(DEFAULTS)
    assert report["speedup"] == report["engine"]["pairs_per_s"] / report["scalar"]["pairs_per_s"]


def test_bench_workload_has_the_asked_size():
    h = bench.workload(300, 64, seed=5)
    assert len(h.releases) == 300 and len(h.services) == 64
    assert h == bench.workload(300, 64, seed=5)
    assert [s.introduced for s in h.services] == sorted(s.introduced for s in h.services)


def test_engine_and_spec_agree_on_the_bench_workload_sample():
    """The bench's own agreement check, and counts against the spec on the sample."""
    h = bench.workload(200, 64, seed=1)
    strategy, vmm = parse_strategy("upstream"), parse_vmm("qemu")
    sample = np.random.default_rng(2).integers(0, 200, (150, 2))
    assert bench.agreement(h, strategy, vmm, sample) == 0
    # a pair the sample is unlikely to hit: the last release to the first
    r = engine.evaluate(h, strategy, vmm)
    want = spec.migrate(h, strategy, vmm, 199, 0)
    assert r.migration(199, 0).outcome == want.outcome


def test_bench_rejects_bad_input_in_one_line(capsys):
    assert cli.main(["bench", "--quick", "--strategy", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcsim: error: unknown strategy 'nope'") and err.count("\n") == 1
    assert cli.main(["bench", "--quick", "--repeat", "0"]) == 2


def test_timed_runs_small_figures_for_a_minimum_time(monkeypatch):
    """A figure of a fast call is the best of as many runs as MIN_SECONDS
    takes (with --repeat above one), not of a few cold ones; --repeat 1 is
    one run, and a slow call stops at --repeat."""
    import time

    monkeypatch.setattr(bench, "MIN_SECONDS", 0.05)
    calls = []

    def nap(seconds):
        return lambda: (calls.append(1), time.sleep(seconds))
    best, worst, runs = bench.timed(nap(0.01), 2)
    assert 2 <= runs <= 5 and runs == len(calls) and 0.01 <= best <= worst
    assert bench.timed(nap(0.01), 1)[2] == 1
    assert bench.timed(nap(0.03), 3)[2] == 3
    assert bench.rate(10, 0.5, 1.0, runs)["runs"] == runs
