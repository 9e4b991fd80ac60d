"""hcsim sweep: tidy table, same rows whatever the executor, atomic output."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from hcsim.analyses import sweep
from hcsim.errors import InputError
from hcsim.frontends.cli import main
from hcsim.model import strategies, synthetic
from hcsim.model import vmm as vmm_mod

#: Tiny sweep (the engine is the default; the scalar spec must agree with it).
TINY = dict(histories=5, releases=5, rate=0.8, burst=0.3, opt_in=0.3, firmware=0.3,
            strategies=["upstream", "raz-wi:ranges=1"], vmms=["qemu", "crosvm"],
            configs=["default", "random:p=0.5,seed=2"])


@pytest.fixture(scope="module")
def serial() -> pd.DataFrame:
    return sweep.run(jobs=1, **TINY)


def _cli(argv: list[str]) -> list[str]:
    return ["sweep", "--histories", "3", "--releases", "4",
            "--strategy", "upstream", "--vmm", "qemu", *argv]


# -- the table ---------------------------------------------------------------------

def test_one_row_per_combination_sorted(serial):
    keys = serial[["seed", "strategy", "vmm", "config"]].astype(str)
    assert len(serial) == 5 * 2 * 2 * 2
    assert not keys.duplicated().any()
    assert serial["seed"].tolist() == sorted(serial["seed"])
    assert list(serial["strategy"].cat.categories) == ["upstream", "raz-wi:ranges=1"]
    first = serial[serial["seed"] == 0]
    assert first["strategy"].astype(str).tolist()[:4] == ["upstream"] * 4
    assert first["vmm"].astype(str).tolist()[:4] == ["qemu", "qemu", "crosvm", "crosvm"]


def test_generator_parameters_are_columns(serial):
    assert (serial["releases"] == 5).all() and (serial["rate"] == 0.8).all()
    assert (serial["registers_from"] == 2).all()      # floor(0.5 * 5)
    assert np.allclose(serial[["space_std", "space_std_hyp", "space_vendor_hyp"]].sum(axis=1), 1)
    for seed, n in serial.groupby("seed")["services"].first().items():
        assert n == len(synthetic.generate(releases=5, rate=0.8, burst=0.3, opt_in=0.3,
                                           firmware=0.3, seed=seed).services)


def test_shares_are_distributions(serial):
    for direction in ("fwd", "bwd"):
        cols = [c for c in serial.columns if c.startswith(direction + "_")
                and not c.startswith(direction + "_refused_")]
        assert len(cols) == 6
        assert np.allclose(serial[cols].sum(axis=1), 1.0)
        # refusals by blame (strategy, drift, both) add up to the refused share
        split = serial[[f"{direction}_refused_{k}" for k in ("strategy", "drift", "both")]]
        assert np.allclose(split.sum(axis=1), serial[f"{direction}_refused"])
    assert serial["silent_loss"].between(0, 1).all()


def test_crosvm_keeps_no_bitmaps(serial):
    """crosvm never saves feature registers (FACTS.md 5): its cost is firmware only."""
    crosvm = serial[serial["vmm"] == "crosvm"]
    assert (crosvm["bytes_per_vcpu"] == 16).all()      # PSCI_VERSION, 16 B


def test_exhaustion_index_and_name_agree(serial):
    has = serial["exhaustion_index"].notna()
    assert (has == serial["exhaustion"].notna()).all()
    named = serial[has]
    assert (named["exhaustion"].astype(str) ==
            "r" + named["exhaustion_index"].astype(int).astype(str)).all()
    assert (named["exhaustion_index"] > named["registers_from"]).all()


def test_reserved_range_runs_out_when_services_overflow_it():
    df = sweep.run(2, releases=4, rate=40, registers_from=0, strategies=["raz-wi:ranges=1"],
                   vmms=["qemu"], jobs=1)
    # About 120 services: the single 64-bit range cannot hold them past r1 or r2.
    assert df["exhaustion_index"].notna().all()
    assert df["exhaustion_index"].between(1, 3).all()


def test_rows_match_hcsim_compare_on_the_regenerated_history(tmp_path, capsys):
    """A row is reproducible: hcsim generate --seed + hcsim compare give it."""
    df = sweep.run(2, seed=7, releases=6, rate=1.0, firmware=0.5, vmms=["qemu"],
                   strategies=["upstream", "full-bitmap"], jobs=1)
    row = df[(df["seed"] == 8)].reset_index(drop=True)
    toml = tmp_path / "h.toml"
    argv = synthetic.params(releases=6, rate=1.0, firmware=0.5).command(8).split()[1:]
    assert main([*argv, "--output", str(toml)]) == 0
    assert main(["compare", "--history", str(toml), "--vmm", "qemu", "--strategy",
                 "upstream", "--strategy", "full-bitmap", "--format", "json"]) == 0
    want = json.loads(capsys.readouterr().out)["rows"]
    got = row.to_dict("records")
    assert [w["strategy"] for w in want] == [g["strategy"] for g in got]
    for w, g in zip(want, got):
        assert g["exhaustion"] == (w["exhaustion"] or math.nan) or \
            (not w["exhaustion"] and math.isnan(g["exhaustion_index"]))
        for key, value in w.items():
            if key not in ("strategy", "exhaustion"):
                assert g[key] == value, (w["strategy"], key)


def test_defaults_cover_every_strategy_and_vmm():
    df = sweep.run(1, releases=2, rate=0.5, jobs=1)
    vmms = len(vmm_mod.REGISTRY)             # qemu-compat included
    assert list(df["strategy"].astype(str)[::vmms]) == [
        strategies.parse(s).spec for s in strategies.DEFAULTS]
    assert df["vmm"].nunique() == vmms and len(df) == len(strategies.DEFAULTS) * vmms


def test_engine_sweep_equals_scalar_sweep(serial):
    """The whole sweep path, engine against the spec, on every strategy and VMM.

    ``full-bitmap`` at 2048-bit width (32 registers): at its default width
    (2048 registers) the spec needs ~13 s here for the same code path; the
    differential tests (test_engine_differential.py) cover the default width.
    """
    specs = [s if s != "full-bitmap" else "full-bitmap:width=2048" for s in strategies.DEFAULTS]
    assert len(specs) == len(strategies.DEFAULTS) and "full-bitmap" in strategies.DEFAULTS
    kwargs = dict(histories=2, releases=5, rate=1.2, burst=0.3, opt_in=0.3, firmware=0.4,
                  configs=["default", "random:p=0.4,seed=1,n=2"], jobs=1, strategies=specs)
    pd.testing.assert_frame_equal(sweep.run(**kwargs), sweep.run(engine="scalar", **kwargs))
    pd.testing.assert_frame_equal(sweep.run(jobs=1, engine="scalar", **{
        k: v for k, v in TINY.items() if k != "engine"}), serial)


# -- executors ------------------------------------------------------------------------

def test_process_pool_gives_the_same_table(serial):
    pd.testing.assert_frame_equal(sweep.run(jobs=2, batch=1, **TINY), serial)
    pd.testing.assert_frame_equal(sweep.run(jobs=2, batch=3, **TINY), serial)


def test_dask_local_cluster_gives_the_same_table(serial):
    from dask import distributed  # a test dependency: never skipped
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        pd.testing.assert_frame_equal(sweep.run(scheduler=cluster, batch=2, **TINY), serial)
        with distributed.Client(cluster) as client:
            pd.testing.assert_frame_equal(sweep.run(scheduler=client, **TINY), serial)
            assert client.status == "running", "a caller's client is left open"


def test_cli_dask_local_cluster(tmp_path):
    out = tmp_path / "s.csv"
    assert main(_cli(["--dask", "--jobs", "2", "--batch", "1", "--output", str(out)])) == 0
    want = sweep.run(3, releases=4, strategies=["upstream"], vmms=["qemu"], jobs=1)
    assert pd.read_csv(out)["silent_loss"].tolist() == want["silent_loss"].tolist()


def test_unreachable_scheduler_is_bad_input(monkeypatch):
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", "0.5s")
    with pytest.raises(InputError, match="cannot connect"):
        sweep.run(scheduler="tcp://127.0.0.1:1", **TINY)


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys):
    sweep.run(jobs=1, **{**TINY, "histories": 1})
    assert capsys.readouterr().err == ""          # pytest's stderr is not a terminal
    sweep.run(jobs=1, progress=True, **{**TINY, "histories": 1})
    assert "hcsim sweep" in capsys.readouterr().err


# -- command line ---------------------------------------------------------------------

def test_cli_csv_and_parquet_equal_the_library(tmp_path, capsys):
    want = sweep.run(3, releases=4, strategies=["upstream"], vmms=["qemu"], jobs=1)
    assert main(_cli(["--output", str(tmp_path / "s.parquet")])) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), want)
    assert main(_cli(["--output", str(tmp_path / "s.csv"), "--jobs", "2"])) == 0
    got = pd.read_csv(tmp_path / "s.csv")
    assert got["silent_loss"].tolist() == want["silent_loss"].tolist()
    assert got["strategy"].tolist() == ["upstream"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.parquet"]
    assert main(_cli([])) == 0
    assert capsys.readouterr().out == (tmp_path / "s.csv").read_text()


@pytest.mark.parametrize("argv,word", [
    (["--strategy", "bitmap"], "unknown strategy"),
    (["--strategy", "wide:width=100"], "power of two"),
    (["--vmm", "kvmtool"], "unknown VMM"),
    (["--histories", "-1"], "histories"),
    (["--histories", "0"], "histories"),
    (["--rate", "-2"], "rate"),
    (["--rate", "nan"], "rate"),
    (["--rate", "many"], "rate"),
    (["--jobs", "0"], "jobs"),
    (["--batch", "0"], "batch"),
    (["--config", "off:PTP"], "off:PTP"),
    (["--config", "random:p=2"], "random"),
    (["--engine", "gpu"], "engine"),
    (["--scheduler", "tcp://x:1", "--dask"], "not allowed"),
])
def test_cli_bad_input_one_line_no_file(tmp_path, capsys, argv, word):
    out = tmp_path / "s.csv"
    assert main(_cli([*argv, "--output", str(out)])) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcsim: error: ") and err.count("\n") == 1, err
    assert word in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing/s.csv", "s.txt", "."])
def test_cli_unwritable_output(tmp_path, capsys, where):
    assert main(_cli(["--output", str(tmp_path / where)])) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def interrupt(task):
    """A task that is interrupted (Ctrl-C) while it runs."""
    raise KeyboardInterrupt


def fail_second(task):
    if task.index == 1:
        raise RuntimeError("boom")
    return REAL_RUN_BATCH(task)


REAL_RUN_BATCH = sweep._run_batch


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_interrupted_sweep_leaves_no_file(tmp_path, capsys, monkeypatch, jobs):
    monkeypatch.setattr(sweep, "_run_batch", interrupt)
    out = tmp_path / "s.parquet"
    assert main(_cli(["--output", str(out), "--jobs", jobs, "--batch", "1"])) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_failed_sweep_keeps_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    out.write_text("previous\n")
    monkeypatch.setattr(sweep, "_run_batch", fail_second)
    with pytest.raises(RuntimeError, match="boom"):
        main(_cli(["--output", str(out), "--jobs", "1", "--batch", "1"]))
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_output_honours_the_umask(tmp_path):
    df = sweep.run(1, releases=2, strategies=["upstream"], vmms=["qemu"], jobs=1)
    old = os.umask(0o022)
    try:
        sweep.write(df, tmp_path / "s.csv")
    finally:
        os.umask(old)
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == 0o644


def test_write_interrupted_midway_leaves_no_file(tmp_path, monkeypatch):
    df = sweep.run(1, releases=2, strategies=["upstream"], vmms=["qemu"], jobs=1)

    def broken(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(KeyboardInterrupt):
        sweep.write(df, tmp_path / "s.csv")
    assert list(tmp_path.iterdir()) == []


# -- library argument checks -------------------------------------------------------

@pytest.mark.parametrize("kwargs,word", [
    ({"histories": 2.5}, "histories"), ({"seed": -1}, "seed"),
    ({"strategies": []}, "no strategy"), ({"vmms": ["qemu", "qemu"]}, "twice"),
    ({"configs": []}, "no config"), ({"engine": "gpu"}, "engine"),
    ({"params": synthetic.params(), "rate": 1.0}, "either"),
    ({"releases": math.inf}, "releases"),
])
def test_run_rejects_bad_arguments(kwargs, word):
    args = {"histories": 1, "jobs": 1, **kwargs}
    with pytest.raises(InputError, match=word):
        sweep.run(**args)


def test_asking_every_drift_id_up_front_changes_no_row(monkeypatch):
    """A worker asks each policy about every id drift can draw before its
    first drifting task; the rows are the same as when each id is asked as
    a history brings it."""
    def run(learn_from):
        monkeypatch.setattr(vmm_mod, "_ANSWERS", {})
        monkeypatch.setattr(vmm_mod, "_RECENT", {})
        monkeypatch.setattr(sweep, "_LEARNED", set())
        monkeypatch.setattr(sweep, "LEARN_FROM", learn_from)
        df = sweep.run(8, seed=11, releases=12, vmms=["qemu", "crosvm"], jobs=1, batch=8,
                       **synthetic.LINUX_DRIFT)
        known = len(vmm_mod._ANSWERS[vmm_mod.parse("qemu").key].ids)
        return df, known

    asked, known_asked = run(10**9)
    learned, known_learned = run(1)
    assert known_asked < len(synthetic.drift_ids()) <= known_learned
    pd.testing.assert_frame_equal(asked, learned)
