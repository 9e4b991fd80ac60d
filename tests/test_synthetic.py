"""Synthetic histories: deterministic, parameters honoured, valid TOML."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hcsim.errors import InputError
from hcsim.frontends.cli import main
from hcsim.model import history
from hcsim.model.history import BITS, SPACE_REGISTERS
from hcsim.model.smccc import FUNCTIONS_PER_SPACE
from hcsim.model.synthetic import LINUX_DRIFT, generate


def counts(histories) -> np.ndarray:
    return np.array([len(h.services) for h in histories], dtype=float)


def assert_mean(sample: np.ndarray, expected: float, sd: float, what: str) -> None:
    """The sample mean is within 4 standard errors of ``expected``."""
    tol = 4 * sd / math.sqrt(len(sample))
    assert abs(sample.mean() - expected) < tol, (
        f"{what}: expected mean {expected:.3f} +- {tol:.3f}, read {sample.mean():.3f}")


# -- determinism ------------------------------------------------------------------

def test_same_seed_same_toml():
    a = generate(releases=30, rate=1.0, seed=11, firmware=0.2, opt_in=0.3)
    b = generate(releases=30, rate=1.0, seed=11, firmware=0.2, opt_in=0.3)
    assert history.dumps(a) == history.dumps(b)


def test_different_seed_different_toml():
    texts = {history.dumps(generate(releases=30, rate=1.0, seed=s)) for s in range(5)}
    assert len(texts) == 5


def test_names_follow_the_documented_scheme():
    h = generate(releases=12, rate=2.0, seed=1)
    assert h.releases == tuple(f"r{k}" for k in range(12))
    assert h.name == "synthetic-1"
    prefix = {"std": "STD_", "std-hyp": "STD_HYP_", "vendor-hyp": "VENDOR_HYP_"}
    for k, s in enumerate(h.services, start=1):
        assert s.name == f"{prefix[s.space]}{k:04d}", s


# -- parameters -----------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.5, 2.0])
def test_rate_is_the_mean_services_per_release(rate):
    hs = [generate(releases=20, rate=rate, burst=0.0, seed=s) for s in range(300)]
    n = counts(hs)
    # Poisson(rate) per release: total ~ Poisson(20 * rate).
    assert_mean(n, 20 * rate, math.sqrt(20 * rate), f"rate {rate}")


def test_higher_rate_gives_more_services():
    low = counts(generate(releases=20, rate=0.5, seed=s) for s in range(100))
    high = counts(generate(releases=20, rate=2.0, seed=s) for s in range(100))
    assert high.mean() > 2 * low.mean()


def test_bursts_add_burst_times_size_per_release():
    hs = [generate(releases=20, rate=0.0, burst=0.3, burst_size=3.0, seed=s)
          for s in range(300)]
    # Bernoulli(0.3) x (1 + Poisson(2)): mean 0.9, variance 0.3*(2+9) - 0.81 per release.
    assert_mean(counts(hs), 20 * 0.9, math.sqrt(20 * (0.3 * 11 - 0.81)), "bursts")


def test_a_family_shares_its_space_and_default():
    for seed in range(20):
        h = generate(releases=10, rate=0.0, burst=1.0, burst_size=4.0, opt_in=0.5,
                     seed=seed)
        by_release: dict[int, set] = {}
        for s in h.services:
            by_release.setdefault(s.introduced, set()).add((s.space, s.default_on))
        assert len(by_release) == 10, "burst=1 lands a family at every release"
        assert all(len(kinds) == 1 for kinds in by_release.values()), by_release


def test_opt_in_share_is_respected():
    hs = [generate(releases=100, rate=2.0, burst=0.0, opt_in=0.3, seed=s) for s in range(20)]
    off = [not s.default_on for h in hs for s in h.services]
    # about 4000 Bernoulli(0.3) draws: standard error 0.007.
    assert abs(np.mean(off) - 0.3) < 0.03, f"opt-in share {np.mean(off):.3f}"


@pytest.mark.parametrize("opt_in,expect_on", [(0.0, True), (1.0, False)])
def test_opt_in_extremes(opt_in, expect_on):
    h = generate(releases=20, rate=2.0, burst=0.5, opt_in=opt_in, seed=4)
    assert h.services and all(s.default_on is expect_on for s in h.services)


def test_space_weights_are_respected():
    hs = [generate(releases=100, rate=2.0, burst=0.0, seed=s,
                   spaces={"std": 1, "vendor-hyp": 3}) for s in range(10)]
    tally = Counter(s.space for h in hs for s in h.services)
    assert tally["std-hyp"] == 0
    share = tally["vendor-hyp"] / sum(tally.values())
    assert abs(share - 0.75) < 0.03, f"vendor-hyp share {share:.3f}"


def test_functions_mean_and_minimum():
    one = generate(releases=50, rate=2.0, functions=1.0, seed=2)
    assert {s.functions for s in one.services} == {1}
    hs = [generate(releases=100, rate=2.0, functions=3.0, seed=s) for s in range(10)]
    fns = np.array([s.functions for h in hs for s in h.services], dtype=float)
    assert fns.min() >= 1
    # shifted geometric with mean 3: variance (1-q)/q^2 = 6.
    assert_mean(fns, 3.0, math.sqrt(6.0), "functions")


@pytest.mark.parametrize("value,index", [(0, 0), (7, 7), (0.5, 5), (0.0, 0), (1.0, 9),
                                         (0.99, 9)])
def test_registers_from_index_or_fraction(value, index):
    h = generate(releases=10, seed=0, registers_from=value)
    assert h.registers_from == index


def test_firmware_off_by_default_and_bumps_on_request():
    assert generate(releases=10, seed=0).firmware == ()
    never = generate(releases=10, seed=0, firmware=0.0).firmware[0]
    assert len(never.values) == 1 and never.at(9).reset == 0x10000
    always = generate(releases=10, seed=0, firmware=1.0).firmware[0]
    resets = [always.at(r).reset for r in range(10)]
    assert resets == [0x10000 + r for r in range(10)]
    # A newer kernel still takes every older version (VMs move forward).
    assert all(resets[r] in always.at(9).accepts for r in range(10))
    assert resets[9] not in always.at(8).accepts


def test_common_random_numbers_across_non_arrival_parameters():
    a = generate(releases=40, rate=1.0, seed=9, opt_in=0.1)
    b = generate(releases=40, rate=1.0, seed=9, opt_in=0.6, functions=2.5, firmware=0.5,
                 registers_from=3)
    assert [(s.name, s.space, s.introduced) for s in a.services] == \
        [(s.name, s.space, s.introduced) for s in b.services]
    # opt-in only ever turns more services off as opt_in grows.
    assert all(sb.default_on <= sa.default_on for sa, sb in zip(a.services, b.services))


def test_zero_rate_gives_an_empty_history():
    h = generate(releases=5, rate=0.0, burst=0.0, seed=0)
    assert h.services == () and history.loads(history.dumps(h)) == h


@pytest.mark.parametrize("kwargs,word", [
    ({"rate": -1}, "rate"), ({"rate": math.nan}, "rate"), ({"rate": math.inf}, "rate"),
    ({"releases": 0}, "releases"), ({"releases": 2.5}, "releases"),
    ({"burst": 1.5}, "burst"), ({"burst_size": 0.5}, "burst_size"),
    ({"opt_in": -0.1}, "opt_in"), ({"functions": 0.5}, "functions"),
    ({"registers_from": 10}, "registers_from"), ({"registers_from": 1.5}, "registers_from"),
    ({"spaces": {"std": 0}}, "spaces"), ({"spaces": {"smc": 1}}, "spaces"),
    ({"spaces": (1, 2)}, "spaces"), ({"firmware": 2.0}, "firmware"),
    ({"seed": -1}, "seed"), ({"rate": 1e9}, "expected services"),
])
def test_bad_parameters_are_input_errors(kwargs, word):
    args = {"releases": 10, **kwargs}
    with pytest.raises(InputError, match=word):
        generate(**args)


# -- round trip --------------------------------------------------------------------
#
# The generator builds its History from parts, without the validating reader
# (for speed: a sweep draws thousands).  The reader stays the one definition
# of a history: every generated history must equal what the reader makes of
# its TOML (``hcsim generate``'s output), field by field, over every
# parameter: drift, firmware, opt-in, spaces, layouts, name.

DRIFTS = st.none() | st.fixed_dictionaries({
    "drift_base": st.integers(0, 300), "drift_add": st.floats(0, 1),
    "drift_add_size": st.floats(1, 30), "drift_remove": st.floats(0, 1),
    "drift_remove_size": st.floats(1, 60)})


def assert_same_history(got: history.History, want: history.History) -> None:
    """Field by field, with the types (a numpy int equals an int but is not one)."""
    if want.other is None and got.other is not None and not got.other.spans:
        # a drift that never lists a register (drift_base 0, no batch added)
        # writes no [[other]] entry, so the file reads back without other
        # registers: the same lists, all empty, but not the same object
        assert not any(got.other_table())
        want = replace(want, other=got.other)
    for f in fields(history.History):
        a, b = getattr(got, f.name), getattr(want, f.name)
        assert a == b, f.name
        assert type(a) is type(b), f.name
    for a, b in zip(got.services, want.services, strict=True):
        assert [type(getattr(a, f.name)) for f in fields(a)] == \
            [type(getattr(b, f.name)) for f in fields(b)], a
    if want.other is not None:     # the per-release lists are not part of ==
        assert got.other_table() == want.other_table()
        spans = want.other.spans
        for r in range(len(want.releases)):
            assert got.other_at(r) == tuple(sorted(i for i, a, b in spans if a <= r < b))


@settings(max_examples=60, deadline=None)
@given(releases=st.integers(1, 30), rate=st.floats(0, 5), burst=st.floats(0, 1),
       burst_size=st.floats(1, 5), functions=st.floats(1, 4), opt_in=st.floats(0, 1),
       registers_from=st.floats(0, 1) | st.integers(0, 29),
       firmware=st.none() | st.floats(0, 1),
       spaces=st.none() | st.tuples(*[st.sampled_from([0, 0.5, 1, 3])] * 3).filter(any),
       drift=DRIFTS, space_registers=st.sampled_from(SPACE_REGISTERS),
       bits=st.sampled_from(BITS),
       name=st.none() | st.text("abz -_.", min_size=1, max_size=8),
       seed=st.integers(0, 2**63 - 1))
@example(releases=3, rate=0.0, burst=0.0, burst_size=1.0, functions=1.0, opt_in=0.0,
         registers_from=0.0, firmware=None, spaces=None, space_registers="lazy",
         bits="dense", name=None, seed=0,
         drift={"drift_base": 0, "drift_add": 0.0, "drift_add_size": 1.0,
                "drift_remove": 1.0, "drift_remove_size": 1.0})
def test_round_trip_and_invariants(releases, rate, burst, burst_size, functions, opt_in,
                                   registers_from, firmware, spaces, drift, space_registers,
                                   bits, name, seed):
    if isinstance(registers_from, int):
        registers_from = min(registers_from, releases - 1)
    h = generate(releases=releases, rate=rate, burst=burst, burst_size=burst_size,
                 functions=functions, opt_in=opt_in, registers_from=registers_from,
                 firmware=firmware, spaces=spaces, name=name, seed=seed,
                 space_registers=space_registers, bits=bits, **(drift or {}))
    text = history.dumps(h)
    assert_same_history(h, history.loads(text, origin="rt.toml"))
    assert history.dumps(history.loads(text)) == text
    assert len({s.name for s in h.services}) == len(h.services)
    assert [s.introduced for s in h.services] == sorted(s.introduced for s in h.services)
    for space in ("std", "std-hyp", "vendor-hyp"):
        assert sum(s.functions for s in h.services if s.space == space) <= FUNCTIONS_PER_SPACE


def test_round_trip_at_the_sweep_size():
    """The sweep's histories (100 releases, Linux drift, firmware) read back the same."""
    for seed in range(20):
        h = generate(releases=100, seed=seed, firmware=0.3, **LINUX_DRIFT)
        assert h.other is not None and any(b < 100 for _, _, b in h.other.spans)
        assert_same_history(h, history.loads(history.dumps(h)))


# -- command line ------------------------------------------------------------------

def test_generate_cli_writes_the_library_history(tmp_path, capsys):
    out = tmp_path / "h.toml"
    rc = main(["generate", "--releases", "12", "--rate", "1.5", "--seed", "5",
               "--opt-in", "0.4", "--registers-from", "r3", "--firmware", "0.2",
               "--spaces", "std=1,vendor-hyp=1", "--output", str(out)])
    assert rc == 0 and capsys.readouterr().out == ""
    want = generate(releases=12, rate=1.5, seed=5, opt_in=0.4, registers_from=3,
                    firmware=0.2, spaces={"std": 1, "vendor-hyp": 1})
    assert out.read_text() == history.dumps(want)
    assert [p.name for p in tmp_path.iterdir()] == ["h.toml"]


def test_generate_cli_stdout_and_source_regenerates(capsys):
    assert main(["generate", "--releases", "6", "--seed", "2", "--rate", "2"]) == 0
    text = capsys.readouterr().out
    h = history.loads(text)
    # The source line is the command that regenerates the history.
    argv = h.source.split()[1:]
    assert main(argv) == 0
    assert capsys.readouterr().out == text


@pytest.mark.parametrize("argv", [
    ["--rate", "-1"], ["--rate", "fast"], ["--releases", "0"], ["--seed", "-3"],
    ["--registers-from", "r99"], ["--spaces", "std"], ["--spaces", "arm=1"],
    ["--opt-in", "2"],
])
def test_generate_cli_bad_input(tmp_path, capsys, argv):
    out = tmp_path / "h.toml"
    assert main(["generate", *argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcsim: error: ") and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_generate_cli_unwritable_output(tmp_path, capsys):
    out = tmp_path / "missing" / "h.toml"
    assert main(["generate", "--output", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.parent.exists()
