"""The thread's positions (issue 12, item 2) and pair-by-pair dominance (item 6)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import hcsim
from hcsim.analyses import dominance, positions
from hcsim.model import synthetic


@pytest.fixture(scope="module")
def ev(linux_whole):
    futures = [synthetic.generate(releases=24, seed=s, **synthetic.LINUX_DRIFT) for s in range(4)]
    heavy = [synthetic.generate(releases=16, rate=8.0, seed=s) for s in range(2)]
    return positions.Evidence(linux_whole, futures, heavy)


@pytest.fixture(scope="module")
def findings(ev):
    return [positions.evaluate(c.key, ev) for c in positions.CLAIMS]


def _fragments(quote: str) -> list[str]:
    return [" ".join(p.split()) for p in quote.split("...") if p.strip()]


@pytest.mark.parametrize("claim", positions.CLAIMS, ids=lambda c: c.key)
def test_every_quote_is_verbatim_in_the_thread(claim):
    text = positions.thread_text()
    at = 0
    for frag in _fragments(claim.quote):
        found = text.find(frag, at)
        assert found >= 0, f"{claim.key}: not in the thread: {frag!r}"
        at = found + len(frag)


def test_a_changed_quote_is_caught():
    assert positions.thread_text().find("nothing more is needed") < 0


def test_the_claims_cover_both_authors_and_marcs_0x14_point():
    keys = [c.key for c in positions.CLAIMS]
    assert len(keys) == len(set(keys)) >= 12
    assert "range-exists-0x14" in keys
    assert {c.who for c in positions.CLAIMS} == {positions.OLIVER, positions.MARC}


def test_every_verdict_follows_from_its_numbers(findings):
    for f in findings:
        assert f.verdict in positions.VERDICTS
        assert f.consistent(), f.claim.key
        # the condition is generated, so it quotes at least one measured number
        if f.condition:
            assert any(str(n) in f.condition for n in f.numbers.values()), f.claim.key


def test_a_verdict_that_contradicts_its_numbers_is_inconsistent(findings):
    f = next(f for f in findings if f.claim.key == "sixteen-kb")
    wrong = [v for v in positions.VERDICTS if v != f.verdict][0]
    bad = positions.Finding(f.claim, f.numbers, f.evidence, wrong, "", f.rule)
    assert not bad.consistent()
    missing = positions.Finding(f.claim, f.numbers, "no numbers here", f.verdict, "", f.rule)
    assert not missing.consistent()


def test_sixteen_kb_evidence_is_exact(ev):
    f = positions.evaluate("sixteen-kb", ev)
    # FACTS.md 3 and 5: 131072 bits in 2048 U64 registers, 16 B each under QEMU.
    assert f.numbers["payload"].value == 16384
    assert f.numbers["qemu"].value == 2048 * 16
    assert f.numbers["firecracker"].value == 2048 * 16
    assert f.verdict == positions.HOLDS


def test_the_rule_flips_with_the_numbers(ev):
    f = positions.evaluate("sixteen-kb", ev)
    cheap = dict(f.numbers, qemu=positions.Number("qemu", 100, "bytes"))
    assert f.rule(cheap) == positions.CONDITIONS


def test_number_interval_is_the_percentiles_of_the_seeds():
    n = positions.Number("x", 0.5, "share", tuple(np.linspace(0, 1, 101)))
    lo, hi = n.interval
    assert lo == pytest.approx(0.025) and hi == pytest.approx(0.975)
    assert str(n) == "50.0% [2.5%, 97.5%]"
    assert str(positions.Number("b", 16384, "bytes")) == "16,384 B"


def test_evidence_uses_both_host_profiles(ev):
    assert list(ev.real) == ["neoverse-n1", "max"]


def test_firmware_refusals_are_not_charged_to_the_encoding(ev):
    # On -cpu max, WORKAROUND_3 drops at v6.15: forward pairs across it are refused
    # under every encoding, blamed on the hypercall (firmware) registers.
    h = ev.real["max"]
    e = ev.era(h, "raz-einval", "qemu", "forward")
    assert e["refused"] > e["refused by drift"]
    assert e["refused by strategy"] == 0.0
    assert ev.firmware_rejected(h)[h.releases.index("v6.14"), h.releases.index("v6.15")]


def test_as_text_wraps_for_email(findings):
    text = positions.as_text(findings)
    assert max(len(line) for line in text.splitlines()) <= 72
    assert text.count("Verdict:") == len(findings)


def test_finding_rejects_an_unknown_verdict():
    with pytest.raises(ValueError):
        positions.Finding(positions.CLAIMS[0], {}, "e", "maybe")


# -- dominance --------------------------------------------------------------------------------

def test_rank_orders_outcomes_by_safety():
    r = dict(zip(hcsim.OUTCOMES, dominance.RANK.tolist()))
    assert r["preserved"] < r["refused"] == r["unsupported"] < r["gained"] < r["lost"] == r["mixed"]


def test_dominance_is_pair_by_pair(linux_whole):
    hs = [linux_whole]
    t = dominance.compare(hs, ["upstream", "raz-einval", "raz-wi"], ["qemu"])
    row = t[(t.a == "raz-einval") & (t.b == "upstream")].iloc[0]
    a, _ = dominance.ranks(hs, "raz-einval", "qemu")
    b, _ = dominance.ranks(hs, "upstream", "qemu")
    assert row.worse == int((a > b).sum()) and row.better == int((a < b).sum())
    # upstream refuses v6.15 -> v6.14 (BMAP_2), raz-einval does not list a new register
    assert row.dominates and row.better > 0
    back = t[(t.a == "upstream") & (t.b == "raz-einval")].iloc[0]
    assert not back.dominates and back.worse == row.better


def test_a_strategy_the_vmm_cannot_run_is_left_out(linux_whole):
    t = dominance.compare([linux_whole], ["upstream", "wide"], ["qemu", "firecracker"])
    assert "wide" not in set(t[t.vmm == "qemu"].a) | set(t[t.vmm == "qemu"].b)
    assert "wide" in set(t[t.vmm == "firecracker"].a)


def test_overflow_opt_in_resets_overflow_services_to_zero():
    h = synthetic.generate(releases=12, rate=8.0, seed=1)
    plain = hcsim.parse_strategy("raz-einval:ranges=1")
    opt = hcsim.parse_strategy("raz-einval:ranges=1,overflow=opt-in")
    last = len(h.releases) - 1
    lp, lo = plain.layout(h), opt.layout(h)
    assert len(lp.regs) == len(lo.regs) > 1
    assert lp.reset(0, last) == lo.reset(0, last)          # the reserved register keeps defaults
    assert any(lp.reset(p, last) for p in range(1, len(lp.regs)))
    assert all(lo.reset(p, last) == 0 for p in range(1, len(lo.regs)))


def test_frontier_marks_the_undominated(linux_whole):
    hs = [linux_whole, synthetic.generate(releases=16, rate=8.0, seed=0)]
    f = dominance.frontier(hs, ["upstream", "raz-einval", "raz-einval:ranges=1,overflow=opt-in"],
                           "qemu").set_index("strategy")
    for s, row in f.iterrows():
        beaten = ((f["mean rank"] <= row["mean rank"]) & (f.pickup >= row.pickup)
                  & ((f["mean rank"] < row["mean rank"]) | (f.pickup > row.pickup))).any()
        assert row.on_frontier == (not beaten), s


def test_unknown_scope_is_refused(linux_whole):
    with pytest.raises(ValueError, match=re.escape("scope")):
        dominance.ranks([linux_whole], "upstream", "qemu", scope="some")
