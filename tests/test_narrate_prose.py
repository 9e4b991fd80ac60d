"""The prose helpers of notebooks 01, 03 and 04: verdicts from numbers, host views, tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hcsim
from hcsim.frontends import narrate

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: The notebooks whose cells this suite keeps short (the others have their own owners).
SHORT = ("01-the-problem", "03-save-restore-cost", "04-linux-replay")


@pytest.mark.parametrize("name", SHORT)
def test_code_cells_are_at_most_15_lines(name):
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    long = [(k, len("".join(c["source"]).splitlines())) for k, c in enumerate(cells)
            if c["cell_type"] == "code" and len("".join(c["source"]).splitlines()) > 15]
    assert long == []


# -- judge ------------------------------------------------------------------------------------

def test_the_verdict_word_follows_the_counts():
    assert narrate.judge({"a": (0, 5), "b": (0, 7)}).startswith("holds (")
    assert narrate.judge({"a": (1, 5), "b": (7, 7)}).startswith("does not hold (")
    assert narrate.judge({"a": (0, 5), "b": (2, 7)}).startswith("holds with conditions (")


def test_the_condition_names_every_case_with_its_numbers():
    text = narrate.judge({"n1": (0, 1176), "max": (162, 1176), "x": (1, 1), "y": (0, 1)},
                         "refused")
    assert "n1: 0 of 1,176 refused" in text and "max: 162 of 1,176 refused" in text
    assert "holds for y" in text and "refused: x" in text


def test_by_release_cases_cover_every_release_once():
    flags = [False, False, True, True, True, False, True]
    cases = narrate.by_release([f"r{k}" for k in range(7)], flags)
    assert sum(t for _, t in cases.values()) == len(flags)
    assert sum(n for n, _ in cases.values()) == sum(flags)
    assert list(cases) == ["r0..r1", "r2..r4", "r5", "r6"]


def test_runs_merge_equal_neighbours_only():
    assert narrate.runs(["a", "b", "c", "d"], [1, 1, 2, 1]) == [("a..b", 1), ("c", 2), ("d", 1)]


@pytest.mark.parametrize("n", [2, 5, 49])
def test_pairs_counts_what_a_brute_force_counts(n):
    s, d = np.indices((n, n))
    assert narrate.pairs(n) == int((d > s).sum())
    assert narrate.pairs(n, adjacent=True) == int((d == s + 1).sum())
    assert narrate.pairs(n, "backward", since=2) == int(((s > d) & (d >= 2)).sum())


def test_downtime_adds_the_link_time_and_the_calls():
    # 1.25 MB at 10 Gbit/s is 1 ms; 1000 calls of 1 us are 1 ms.
    assert narrate.downtime_ms(1_250_000, 0, 10.0, 1.0) == pytest.approx(1.0)
    assert narrate.downtime_ms(0, 1000, 10.0, 1.0) == pytest.approx(1.0)


# -- the Linux history on both host profiles ------------------------------------------------

def test_host_views_are_the_default_and_max(linux_whole, four):
    assert list(narrate.host_views(linux_whole)) == ["neoverse-n1", "max"]
    assert list(narrate.host_views(four)) == [four.host]


def test_refusals_count_every_refused_pair_once(linux_whole):
    out = hcsim.evaluate(linux_whole, "upstream", "qemu")
    refused = out.codes[0] == hcsim.OUTCOMES.index("refused")
    s, d = np.indices(refused.shape)
    assert sum(narrate.refusals(out).values()) == int((refused & (d > s)).sum())
    assert sum(narrate.refusals(out, "backward", adjacent=True).values()) == \
        int((refused & (s == d + 1)).sum())


def test_workaround_3_refuses_forward_only_on_max(linux_whole):
    # data/linux-upstream.md: the N1's levels are the same on every probed kernel;
    # -cpu max drops WORKAROUND_3 to NOT_AVAIL at v6.15 (e403e8538359).
    table = narrate.refusal_table(linux_whole, "upstream", "qemu", adjacent=True)
    row = table.loc["EINVAL on SMCCC_ARCH_WORKAROUND_3"]
    assert row["neoverse-n1", "hypercall"] == 0 and row["max", "hypercall"] == 1


def test_count_agrees_with_the_outcome_codes(linux_whole):
    out = hcsim.evaluate(linux_whole, "upstream", "qemu")
    rf = linux_whole.registers_from
    s, d = np.indices(out.codes[0].shape)
    mask = (s > d) & (d >= rf)
    expected = int((out.codes[0][mask] == hcsim.OUTCOMES.index("preserved")).sum())
    assert narrate.count(out, "backward", ["preserved"], rf) == expected


def test_list_changes_find_the_v6_13_drop(linux_whole):
    # FACTS 4 / data/linux-reglists.md: v6.13 stopped listing TCR2_EL1, PIRE0_EL1, PIR_EL1.
    added, gone = narrate.list_changes(linux_whole)[linux_whole.index("v6.13")]
    assert sorted(hcsim.regs.reg_name(i) for i in gone) == ["PIRE0_EL1", "PIR_EL1", "TCR2_EL1"]
    assert added == []


def test_events_are_found_in_the_history(linux_whole):
    ev = narrate.events(linux_whole)
    assert ev["new feature register"] == linux_whole.index("v6.15")     # VENDOR_HYP_BMAP_2
    assert ev["PSCI_VERSION reset 0x10003"] == linux_whole.index("v6.13")


def test_epochs_split_exactly_where_the_hypercall_registers_change(four):
    cuts = narrate.epochs(four, "upstream")
    snaps = [narrate.hypercall_snapshot(four, "upstream", r) for r in range(len(four.releases))]
    assert cuts[0] == 0
    assert all((snaps[r] != snaps[r - 1]) == (r in cuts) for r in range(1, len(snaps)))


def test_without_other_registers_nothing_changes_on_the_whole_list(four):
    assert narrate.changed_pairs(four, "upstream", "qemu") == []


def test_blame_grid_is_square_with_a_preserved_diagonal(four):
    lines = narrate.blame_grid(four, "upstream", "qemu").splitlines()
    n = len(four.releases)
    rows = [line.split()[-1] for line in lines]
    assert len(rows) == n and all(len(r) == n for r in rows)
    assert all(r[k] == "p" for k, r in enumerate(rows))


def test_moved_is_the_whole_list_times_the_vcpus(linux_whole):
    frame = narrate.moved(linux_whole, ["upstream", "wide"], "qemu", 4, 10.0, 1.0)
    assert list(frame["strategy"]) == ["upstream"]                 # QEMU cannot carry wide
    c = hcsim.cost(linux_whole, "upstream", "qemu")[-1]
    row = frame.iloc[0]
    assert row["whole list B/VM"] == 4 * c.list_bytes_per_vcpu
    assert row["SET_ONE_REG calls"] == 4 * c.list_registers
    assert row["hypercall B/VM"] == 4 * c.bytes_per_vcpu
