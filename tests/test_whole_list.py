"""The whole register list (DESIGN.md section 9, issue 11): other registers."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcsim.errors import InputError
from hcsim.frontends.cli import main
from hcsim.model import synthetic
from hcsim.model.history import dumps, load, loads
from hcsim.model.kvm import Kernel, KvmError
from hcsim.model.other import from_spans
from hcsim.model.regs import KVM_REG_ARM64_SVE, KVM_REG_ARM_CORE, coproc_of
from hcsim.model.strategies import parse as parse_strategy

UPSTREAM = parse_strategy("upstream")
TCR2_EL1 = 0x603000000013C103


@pytest.fixture(scope="module")
def linux():
    h = load("linux")
    assert h.registers == "all"             # the default view of a history with reglists
    return h


def cpreg(history, kernel, features=None):
    """QEMU's cpreg list: every listed id except CORE and SVE."""
    cpu = Kernel(history, kernel, UPSTREAM).create_vm().create_vcpu().init(features=features)
    return [r for r in cpu.get_reg_list()
            if coproc_of(r) not in (KVM_REG_ARM_CORE, KVM_REG_ARM64_SVE)]


@pytest.mark.parametrize("kernel, count", [
    ("5.10.0-32-arm64", 237), ("v6.1", 167), ("v6.12", 184), ("v6.16", 182), ("v7.3", 182)])
def test_the_probe_lists_reproduce_qemus_cpreg_counts(linux, kernel, count):
    # FACTS.md 5: QEMU's cpreg list on the probed kernels, vCPU without a PMU
    # (5.10.0-32 is the probed Debian kernel: v5.10 with WORKAROUND_3 backported)
    assert len(cpreg(linux, kernel)) == count


def test_a_pmu_vcpu_lists_the_74_pmu_registers(linux):
    assert len(cpreg(linux, "v6.12", {"pmu"})) == 184 + 74
    assert len(cpreg(linux, "v7.3", {"pmu"})) == 182 + 75      # + PMMIR_EL1


def test_listed_other_registers_read_and_write_unlisted_ones_are_enoent(linux):
    cpu = Kernel(linux, "v6.12", UPSTREAM).create_vm().create_vcpu().init()
    assert TCR2_EL1 in cpu.get_reg_list()
    value = cpu.get_one_reg(TCR2_EL1)
    cpu.set_one_reg(TCR2_EL1, value)
    later = Kernel(linux, "v6.16", UPSTREAM).create_vm().create_vcpu().init()
    assert TCR2_EL1 not in later.get_reg_list()
    for call in (lambda: later.set_one_reg(TCR2_EL1, value), lambda: later.get_one_reg(TCR2_EL1)):
        with pytest.raises(KvmError) as exc:
            call()
        assert exc.value.errno == errno.ENOENT


def test_the_hypercall_view_lists_only_classes_0x14_and_0x16():
    h = load("linux")
    assert h.has_other
    hyp = h.with_registers("hypercall")
    cpu = Kernel(hyp, "v6.12", UPSTREAM).create_vm().create_vcpu().init()
    assert {coproc_of(r) for r in cpu.get_reg_list()} == {0x14, 0x16}


def test_a_history_without_register_lists_is_unchanged():
    h = synthetic.generate(releases=6, rate=1.0, seed=2)
    assert not h.has_other and not h.whole
    assert h.with_registers("all").other_at(0) == ()
    with pytest.raises(InputError, match="no register lists"):
        h.with_features({"pmu"})


def test_a_feature_set_the_history_lacks_is_bad_input(linux, capsys):
    with pytest.raises(InputError, match="no register lists for vCPU features"):
        linux.with_features({"sve"})
    assert main(["matrix", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu",
                 "--features", "sve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcsim: error:") and "{sve}" in err and len(err.splitlines()) == 1


def test_other_entries_round_trip_and_validate():
    text = """
releases = ["r0", "r1", "r2"]
[[other]]
id = "0x603000000013c103"
name = "TCR2_EL1"
introduced = "r0"
removed = "r2"
"""
    h = loads(text).with_registers("all")
    assert [h.other_at(r) for r in range(3)] == [(TCR2_EL1,), (TCR2_EL1,), ()]
    assert loads(dumps(h)).other == h.other
    for bad, what in [('id = "0x6030000000140000"', "not an other register"),
                      ('id = "TCR2"', "not a 0x KVM_REG_ARM64 id"),
                      ('id = "0x603000000013c103"\nremoved = "r0"', "not after"),
                      ('id = "0x603000000013c103"\nname = "TCR_EL1"', "but")]:
        with pytest.raises(InputError, match=what):
            loads(f'releases = ["r0", "r1"]\n[[other]]\n{bad}\nintroduced = "r0"\n')


def test_drift_rate_zero_is_todays_model_and_drift_is_seeded():
    plain = synthetic.generate(releases=20, rate=0.5, seed=4)
    assert plain.other is None
    drifted = synthetic.generate(releases=20, rate=0.5, seed=4, **synthetic.LINUX_DRIFT)
    assert drifted.services == plain.services
    assert drifted.other is not None
    again = synthetic.generate(releases=20, rate=0.5, seed=4, **synthetic.LINUX_DRIFT)
    assert dumps(again) == dumps(drifted)
    assert len(drifted.with_registers("all").other_at(0)) == 232


@st.composite
def other_spans(draw):
    """Release names and valid ``[[other]]`` spans: an id may come back after a gap."""
    n = draw(st.integers(1, 12))
    spans = []
    for rid in draw(st.lists(st.integers(0, 40), max_size=30, unique=True)):
        cuts = sorted(draw(st.lists(st.integers(0, n), min_size=2, max_size=6, unique=True)))
        spans += [(0x6030000000138000 + rid, a, b) for a, b in zip(cuts[::2], cuts[1::2])]
    return tuple(f"r{k}" for k in range(n)), draw(st.permutations(spans))


def listed(spans, r):
    return tuple(sorted(i for i, a, b in spans if a <= r < b))


@settings(max_examples=200, deadline=None)
@given(other_spans(), st.data())
def test_other_lists_are_the_spans_in_force(case, data):
    names, spans = case
    o = from_spans(spans, names)
    assert o.table("max") == tuple(listed(spans, r) for r in range(len(names)))
    k = data.draw(st.integers(0, len(names) - 1))
    for part in (o.since(k), o.until(k), o.insert(max(k, 1), "new")):
        assert part.table("max") == tuple(listed(part.spans, r)
                                          for r in range(len(part.names)))
    assert o.since(k).table("max") == o.table("max")[k:]
    assert o.until(k).table("max") == o.table("max")[:k + 1]


# -- the VMM rules over the whole list (issue 11 items 2-4) ---------------------------

import csv  # noqa: E402
import io  # noqa: E402

from histgen import histories  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402

from hcsim.evaluation import engine, measures, spec  # noqa: E402
from hcsim.evaluation.outcomes import BLAMES  # noqa: E402
from hcsim.model.vmm import parse as parse_vmm  # noqa: E402


def matrix_csv(capsys, vmm: str, *extra: str) -> dict[tuple[str, str], dict]:
    assert main(["matrix", "--history", "linux", "--strategy", "upstream", "--vmm", vmm,
                 "--format", "csv", *extra]) == 0
    rows = csv.DictReader(io.StringIO(capsys.readouterr().out))
    return {(r["src"], r["dst"]): r for r in rows}


def test_linux_events_under_qemu(capsys):
    rows = matrix_csv(capsys, "qemu")
    assert list(next(iter(rows.values()))) == ["src", "dst", "outcome", "gained", "lost",
                                               "detail", "blame"]
    for pair in (("v6.12", "v6.13"), ("v6.12", "v6.16")):
        r = rows[pair]
        assert (r["outcome"], r["blame"]) == ("refused", "other"), pair
        assert "failed to load cpu:cpreg_vmstate_array_len" in r["detail"]
        assert "TCR2_EL1" in r["detail"]
    r = rows[("v6.15", "v6.14")]
    assert (r["outcome"], r["blame"]) == ("refused", "hypercall")
    assert "VENDOR_HYP_BMAP_2" in r["detail"]
    r = rows[("v6.16", "v6.12")]           # count passes, BMAP_2 dropped at the tail, PSCI fails
    assert (r["outcome"], r["blame"], r["detail"]) == (
        "refused", "hypercall", "EINVAL on KVM_REG_ARM_PSCI_VERSION")
    assert rows[("v6.14", "v6.15")]["blame"] == ""


def test_linux_events_under_qemu_compat(capsys):
    rows = matrix_csv(capsys, "qemu-compat")
    for pair in (("v6.12", "v6.16"), ("v6.15", "v6.14"), ("v6.12", "v6.13")):
        assert rows[pair]["outcome"] != "refused", pair


def test_the_hypercall_view_is_todays_model(capsys):
    rows = matrix_csv(capsys, "qemu", "--registers", "hypercall")
    assert rows[("v6.12", "v6.13")]["outcome"] == "preserved"
    assert rows[("v6.15", "v6.14")]["blame"] == "hypercall"


@pytest.mark.parametrize("spec", ["qemu-compat:hidden=0x60300000001", "qemu-compat:hidden=NOPE_EL1",
                                  "qemu-compat:colour=red", "qemu:hidden=TCR2_EL1"])
def test_a_bad_id_list_is_bad_input(capsys, spec):
    assert main(["matrix", "--history", "linux", "--strategy", "upstream", "--vmm", spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcsim: error:") and len(err.splitlines()) == 1


def test_qemu_compat_parameters_take_ids_and_names():
    v = parse_vmm("qemu-compat:hidden=,safe-missing=TCR2_EL1;0x603000000013c512")
    assert v.rule.hidden == frozenset()
    assert v.rule.tolerated == {TCR2_EL1, 0x603000000013C512}
    d = parse_vmm("qemu-compat")
    assert d.rule.hidden == {0x6030000000160003} and len(d.rule.tolerated) == 3
    assert "hypothetical" in parse_vmm("qemu-tolerant").summary


def test_cost_gives_the_whole_list_beside_the_hypercall_part(linux):
    c = measures.cost_at(linux, UPSTREAM, parse_vmm("qemu"), linux.index("v6.12"), vcpus=2)
    assert (c.registers, c.list_registers) == (7, 184)
    assert c.list_bytes_per_vcpu == 184 * 16 and c.list_ioctls == 2 * 184 * 2
    crosvm = measures.cost_at(linux, UPSTREAM, parse_vmm("crosvm"), linux.index("v6.12"))
    assert crosvm.list_registers == crosvm.registers == 4      # class 0x14 only


VMMS = ["qemu", "qemu-compat", "qemu-tolerant", "firecracker", "cloud-hypervisor", "crosvm",
        "zero-unknown",
        "qemu-compat:hidden=,safe-missing=0x603000000013c103;0x6020000000110000"]
SPECS = ["upstream", "raz-wi", "invalidate-on-write", "raz-einval", "full-bitmap:width=1024",
         "invalidate-on-write:scope=fw"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(histories(max_releases=5, max_services=6, drift=True), st.sampled_from(SPECS),
       st.sampled_from(VMMS), st.booleans(), st.booleans())
def test_engine_equals_spec_with_drift(h, name, vmm, whole, compress):
    h = h.with_registers("all" if whole else "hypercall")
    s, v = parse_strategy(name), parse_vmm(vmm)
    r = engine.evaluate(h, s, v, compress=compress)
    blames = r.blame_codes()
    n = len(h.releases)
    for a in range(n):
        for b in range(n):
            m = spec.migrate(h, s, v, a, b)
            e = r.migration(a, b)
            assert (m.outcome, m.gained, m.lost, m.blame) == (
                e.outcome, e.gained, e.lost, BLAMES[blames[0, a, b]]), (a, b, m)


@pytest.mark.parametrize("distinct_from", [0, None])
@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("name", ["upstream", "full-bitmap"])
def test_engine_models_the_hypothetical_tolerance_on_the_whole_list(linux_whole, monkeypatch,
                                                                   distinct_from, compress, name):
    """``qemu-tolerant``'s source rows, each its own (few rows) or merged by
    their drops (``distinct_from=0``: every row count), give the spec's codes;
    under ``full-bitmap`` most registers hold no service and drop together."""
    if distinct_from is not None:
        monkeypatch.setattr(engine, "_TOLERANT_DISTINCT_FROM", distinct_from)
    v, s = parse_vmm("qemu-tolerant"), parse_strategy(name)
    for h in (linux_whole, linux_whole.with_registers("hypercall")):
        assert engine.supports(h, s, v) == (True, "")
        e = engine.evaluate(h, s, v, compress=compress)
        key = (name, h.registers)
        if key not in _TOLERANT_SPEC:      # the spec's answer, once per strategy and view
            sp = spec.evaluate(h, s, v, [frozenset()])
            _TOLERANT_SPEC[key] = (sp.codes, sp.blame_codes())
        codes, blames = _TOLERANT_SPEC[key]
        assert (e.codes == codes).all() and (e.blame_codes() == blames).all()


_TOLERANT_SPEC: dict = {}


def test_probe_replay_checks_the_listed_ids_and_counts(tmp_path, capsys):
    from hcsim.model.history import data_path
    src = data_path("kernel-probe", "6.12.117+deb13-arm64.jsonl")
    text = src.read_text()
    assert '"0x603000000013c103"' in text                  # TCR2_EL1, listed by 6.12
    bad = tmp_path / src.name
    bad.write_text(text.replace('"0x603000000013c103"', '"0x603000000013c104"')
                   .replace('"0x0013":163', '"0x0013":162'))
    assert main(["probe-replay", str(src), "--history", "linux"]) == 0
    capsys.readouterr()
    assert main(["probe-replay", str(bad), "--history", "linux"]) == 1
    out = capsys.readouterr().out
    assert "listed ids not modelled: S3_0_C2_C0_4" in out
    assert "modelled ids not listed: TCR2_EL1" in out
    assert "class 0x0013: expected 162 registers, read 163" in out

