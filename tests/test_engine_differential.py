"""The vectorised engine equals the scalar spec on every triple, or says it cannot.

For random histories (hypothesis) and the bundled Linux history, every
strategy of :data:`hcsim.model.strategies.REGISTRY` with drawn parameters and
every VMM policy of :data:`hcsim.model.vmm.REGISTRY` (plus the test-only
:class:`OldQemu`): either :func:`hcsim.evaluation.engine.supports` says no and
``evaluate(backend="engine")`` raises, or the engine gives, for every
(configuration, source, destination), the outcome, gained set and lost set
of ``evaluate(backend="spec")``, in both of its modes (release compression
on and off, with tiny chunks so the chunking is exercised too).  Adding a
strategy or a VMM gets it checked with no edit here.  A failure prints the
differing triples and the history as TOML.

Example counts are modest (the whole test suite has a time budget, see
tests/conftest.py); set ``HCSIM_DIFF_EXAMPLES`` (a multiplier, default 1)
for a longer run, e.g. ``HCSIM_DIFF_EXAMPLES=5`` before a release.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from histgen import OTHER_IDS
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from hcsim.evaluation import backends, engine, measures
from hcsim.evaluation.backends import evaluate
from hcsim.evaluation.engine import EngineUnsupported
from hcsim.evaluation.outcomes import BLAME_CODES, BLAMES, CODES, OUTCOMES, pack, unpack, words_for
from hcsim.evaluation.spec import migrate
from hcsim.model import strategies
from hcsim.model.config import Setting
from hcsim.model.history import BITS, History, dumps, from_dict
from hcsim.model.regs import feat_reg
from hcsim.model.strategies import FeatureReg, Layout, Strategy
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import QEMU_RULE, REGISTRY, Qemu, Vmm
from hcsim.model.vmm import parse as parse_vmm

#: KVM_REG_ARM_VENDOR_HYP_BMAP_2 (v6.15).
VENDOR_HYP_BMAP_2 = 0x6030000000160003


class OldQemu(Qemu):
    """Test-only: a QEMU from before v6.15, which does not know VENDOR_HYP_BMAP_2.

    Its ``saves`` depends on the register index, not only on class and
    width: the engine must model it or refuse it, never disagree.
    """

    name = "old-qemu"
    rule = replace(QEMU_RULE, saves=lambda rid: rid != VENDOR_HYP_BMAP_2)


#: Every VMM policy the differential tests run: the registry and the test-only ones.
POLICIES: dict[str, type[Vmm]] = {**REGISTRY, OldQemu.name: OldQemu}

SCALE = float(os.environ.get("HCSIM_DIFF_EXAMPLES", "1"))
SPACES = ("std", "std-hyp", "vendor-hyp")
#: Pinnable upstream registers per space: the space's own index, and
#: indices no other space pins (3 is VENDOR_HYP_BMAP_2's).
PINS = {"std": (0,), "std-hyp": (1, 4), "vendor-hyp": (2, 3, 5)}
FW_VALUES = ("0x1", "0x2", "0x10000", "0x10001", "0x10003")
#: A host CPU profile with its own firmware values (as ``neoverse-n1`` in Linux).
HOST = "n1"


def examples(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def histories(draw, max_releases: int = 5, bulk: bool = True, hosts: bool = True,
              drift: bool = False, overflow: bool = False) -> History:
    """Valid histories exercising every rule the engine must reproduce.

    Up to ``max_releases`` releases, ``registers_from`` anywhere; a handful
    of services with 1-3 functions (sometimes 60-70, to straddle full-bitmap
    registers), opt-in ones, pinned upstream registers and bits; sometimes a
    bulk of 65-140 services in one space (a second upstream register,
    overflow past a reserved range of 1 or 2 registers); 0-3 firmware registers, ``store``
    or ``check``, with value changes at later releases; sometimes values for
    a host CPU profile (``hosts``, also in changes) and migrations on it.

    ``drift``: other registers (:data:`histgen.OTHER_IDS`) listed from and
    removed at drawn releases.  ``overflow``: always a bulk, of 150-300
    services, and sometimes ``bits = "function-numbered"``, so that
    reserved ranges of 3 or 4 registers are often exceeded too.
    """
    n = draw(st.integers(1, max_releases))
    rels = [f"r{k}" for k in range(n)]
    rel = st.integers(0, n - 1).map(lambda k: rels[k])
    doc: dict = {"name": "hyp", "releases": rels,
                 "registers_from": draw(rel), "service": [], "firmware": []}
    pinned: set[tuple[int, int]] = set()
    for k in range(draw(st.integers(0, 9))):
        space = draw(st.sampled_from(SPACES))
        svc = {"name": f"S{k}", "space": space, "introduced": draw(rel),
               "functions": draw(st.one_of(st.integers(1, 3), st.integers(60, 70))),
               "default": draw(st.sampled_from(["on", "on", "off"]))}
        if draw(st.integers(0, 3)) == 0:
            index = draw(st.sampled_from(PINS[space]))
            bit = draw(st.integers(0, 63))
            if (index, bit) not in pinned:
                pinned.add((index, bit))
                svc["register"] = f"0x{0x6030000000160000 | index:x}"
                svc["bit"] = bit
        doc["service"].append(svc)
    if overflow or bulk and draw(st.integers(0, 3)) == 0:
        space = draw(st.sampled_from(SPACES))
        first = draw(st.integers(0, n - 1))
        opt_in = draw(st.booleans())
        for k in range(draw(st.integers(150, 300) if overflow else st.integers(65, 140))):
            doc["service"].append({
                "name": f"B{k}", "space": space,
                "introduced": rels[draw(st.integers(first, n - 1)) if k % 16 == 0 else first],
                "default": "off" if opt_in and k % 7 == 0 else "on"})
    for i in range(draw(st.integers(0, 3))):
        first = draw(st.integers(0, n - 1))
        accepts = draw(st.lists(st.sampled_from(FW_VALUES), min_size=1, max_size=3, unique=True))
        entry = {"name": f"FW{i}", "id": f"0x{0x6030000000140000 | i:x}",
                 "introduced": rels[first], "accepts": accepts,
                 "reset": draw(st.sampled_from(accepts)),
                 "on_write": draw(st.sampled_from(["store", "check"])), "changes": []}
        if hosts and draw(st.booleans()):
            entry["hosts"] = {HOST: values(draw)}
        for later in sorted(set(draw(st.lists(st.integers(first + 1, n - 1), max_size=2)))
                            if first + 1 < n else ()):
            change = {"release": rels[later], **values(draw)}
            if hosts and draw(st.integers(0, 2)) == 0:
                change["hosts"] = draw(st.sampled_from([{}, {HOST: values(draw)}]))
            entry["changes"].append(change)
        doc["firmware"].append(entry)
    if any(HOST in f.get("hosts", {}) or any(HOST in c.get("hosts", {}) for c in f["changes"])
           for f in doc["firmware"]):
        doc["host"] = draw(st.sampled_from([HOST, "max"]))
    if overflow:
        doc["bits"] = draw(st.sampled_from(BITS))
    if drift:
        doc["other"] = []
        for rid in OTHER_IDS:
            if draw(st.booleans()):
                first = draw(st.integers(0, n - 1))
                entry = {"id": rid, "introduced": rels[first]}
                if first + 1 < n and draw(st.booleans()):
                    entry["removed"] = rels[draw(st.integers(first + 1, n - 1))]
                doc["other"].append(entry)
    return from_dict(doc, origin="hypothesis")


def values(draw) -> dict:
    """A firmware register's values: what it accepts and resets to."""
    accepts = draw(st.lists(st.sampled_from(FW_VALUES), min_size=1, max_size=3, unique=True))
    return {"accepts": accepts, "reset": draw(st.sampled_from(accepts))}


def configurations(draw, h: History) -> list:
    """1-3 configurations: the default, random sets of services turned off,
    and sometimes a :class:`Setting` that also turns opt-in services on."""
    names = [s.name for s in h.services]
    out: list = [frozenset()]
    for _ in range(draw(st.integers(0, 2))):
        p = draw(st.sampled_from([0.1, 0.5, 0.9]))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        off = frozenset(x for x in names if rng.random() < p)
        if draw(st.integers(0, 3)) == 0:
            on = frozenset(x for x in names if x not in off and rng.random() < 0.5)
            out.append(Setting(off=off, on=on))
        else:
            out.append(off)
    return out


def at(result, pairs) -> tuple[np.ndarray, ...]:
    """Outcome codes, gained and lost service bits and refusal blames of
    ``result``, one row per triple: every (configuration, source,
    destination) in ``np.ndindex`` order, or the configurations times
    ``pairs``."""
    k = len(result.history.services)
    codes, gained, lost, blame = (result.codes, unpack(result.gained, k),
                                  unpack(result.lost, k), result.blame_codes())
    if pairs is not None:
        s, d = np.array(pairs, dtype=np.intp).reshape(-1, 2).T
        codes, gained, lost, blame = (a[:, s, d] for a in (codes, gained, lost, blame))
    m = codes.size
    return codes.reshape(m), gained.reshape(m, k), lost.reshape(m, k), blame.reshape(m)


def from_spec(h: History, strategy: Strategy, policy: Vmm, configs, triples) -> tuple[np.ndarray, ...]:
    """:func:`at` for the spec's :func:`migrate` of each triple."""
    ms = [migrate(h, strategy, policy, s, d, configs[c]) for c, s, d in triples]
    k = len(h.services)
    sets = np.array([[[x.name in names for x in h.services] for names in (m.gained, m.lost)]
                     for m in ms], bool).reshape(len(ms), 2, k)
    return (np.array([CODES[m.outcome] for m in ms], np.int8), sets[:, 0], sets[:, 1],
            np.array([BLAME_CODES[m.blame] for m in ms], np.int8))


def differences(h: History, strategy: Strategy, vmm: str, configs, pairs=None) -> list[str]:
    """Triples where the engine (either mode) and the spec differ, described.

    Compared per (configuration, source, destination): the outcome, the
    gained and lost sets, and the blame of a refusal.  Compared as arrays:
    :meth:`Outcomes.migration` of an engine result would replay the spec
    for every loud pair only to build a cause the comparison ignores.

    Empty when the engine does not model the pair, provided it says so
    loudly: ``supports`` is False and ``backend="engine"`` raises.
    """
    policy = POLICIES[vmm]() if vmm in POLICIES else parse_vmm(vmm)
    n = len(h.releases)
    ok, reason = engine.supports(h, strategy, policy, configs)
    if not ok:
        with pytest.raises(EngineUnsupported):
            evaluate(h, strategy, policy, configs, backend="engine")
        auto = evaluate(h, strategy, policy, configs) if pairs is None else None
        assert auto is None or (auto.backend, auto.reason) == ("spec", reason)
        return []
    results = {compress: engine.evaluate(h, strategy, policy, configs, compress=compress,
                                         chunk_pairs=7)
               for compress in (True, False)}
    if pairs is None:
        triples = [(c, s, d) for c in range(len(configs)) for s, d in np.ndindex(n, n)]
        want = at(evaluate(h, strategy, policy, configs, backend="spec"), None)
    else:
        triples = [(c, s, d) for c in range(len(configs)) for s, d in pairs]
        want = from_spec(h, strategy, policy, configs, triples)
    out = []
    for compress, result in results.items():
        assert result.codes.shape == (len(configs), n, n)
        got = at(result, pairs)
        differ = (want[0] != got[0]) | (want[3] != got[3])
        differ |= (want[1] != got[1]).any(axis=1) | (want[2] != got[2]).any(axis=1)
        for i in np.flatnonzero(differ):
            c, s, d = triples[i]
            e, g = (describe(h, [a[i] for a in x]) for x in (want, got))
            out.append(f"{strategy.spec} under {vmm} (compress={compress}), config {c} "
                       f"{configs[c]!r}: {h.releases[s]} -> {h.releases[d]}: scalar {e} "
                       f"({migrate(h, strategy, policy, s, d, configs[c]).detail}); engine {g}")
    return out


def describe(h: History, row) -> str:
    """One triple of :func:`at` as text: outcome, +gained, -lost, blame."""
    code, gained, lost, blame = row
    names = [sorted(x.name for x, on in zip(h.services, bits) if on) for bits in (gained, lost)]
    return f"{OUTCOMES[int(code)]} +{names[0]} -{names[1]} blame {BLAMES[int(blame)]!r}"


def assert_same(h: History, specs, configs, vmms=tuple(POLICIES), pairs=None) -> None:
    diffs = []
    for spec in specs:
        strategy = spec if isinstance(spec, Strategy) else parse_strategy(spec)
        for vmm in vmms:
            diffs += differences(h, strategy, vmm, configs, pairs=pairs)
    assert not diffs, (f"{len(diffs)} triples differ:\n" + "\n".join(diffs[:12])
                       + "\n--- history ---\n" + dumps(h))


# -- strategies with their parameters, drawn from the registry ---------------------------

def _values(param) -> st.SearchStrategy:
    """Values of one strategy parameter: its choices, or a few valid integers."""
    if param.choices:
        return st.sampled_from(param.choices)
    top = param.maximum if param.maximum is not None else param.minimum + 8
    if param.power_of_two:
        return st.sampled_from([1 << k for k in range(top.bit_length())
                                if param.minimum <= 1 << k <= top])
    return st.integers(param.minimum, min(top, param.minimum + 2))


@st.composite
def spec_strategy(draw) -> str:
    """A registered strategy with drawn parameters, as ``NAME:k=v,...``."""
    name = draw(st.sampled_from(sorted(strategies.REGISTRY)))
    params = strategies.REGISTRY[name].params
    values = [f"{k}={draw(_values(p))}" for k, p in params.items() if draw(st.booleans())]
    return name + (":" + ",".join(values) if values else "")


def small(h: History, spec: str) -> bool:
    """Few enough registers for the spec to walk every pair quickly."""
    return len(parse_strategy(spec).layout(h).regs) <= 256


@examples(120)
@given(histories(), spec_strategy(), st.data())
def test_engine_equals_spec_on_random_histories(h, spec, data):
    assume(small(h, spec))
    assert_same(h, [spec], configurations(data.draw, h))


@examples(25)
@given(histories(max_releases=4), st.data())
def test_engine_equals_spec_for_every_strategy_at_once(h, data):
    """Every default strategy on the same history (one example covers them all)."""
    specs = [spec for spec in strategies.DEFAULTS if small(h, spec)]
    specs += ["invalidate-on-write:scope=fw", "full-bitmap:width=2048",
              "wide:writes=invalidate", "full-bitmap:width=2048,spaces=all"]
    assert_same(h, specs, configurations(data.draw, h))


@examples(4)
@given(histories(max_releases=3, bulk=False), st.data())
def test_engine_equals_spec_full_bitmap_of_64_bit_registers(h, data):
    """``full-bitmap`` at its default width: 2048 registers, slow in the spec."""
    assert_same(h, ["full-bitmap:width=64"], configurations(data.draw, h)[:2])


# -- raz-einval's opt-in overflow over the whole register list ---------------------------

#: ``raz-einval`` with services past its reservation made opt-in, at the
#: default 4 reserved registers and at 3.
OVERFLOW_SPECS = ("raz-einval:overflow=opt-in", "raz-einval:ranges=3,overflow=opt-in")
#: Every VMM policy, and QEMU with Eric Auger's series tolerating two of the
#: drifting other registers (one SYSREG, one DEMUX) instead of its defaults.
WHOLE_LIST_VMMS = (*POLICIES, "qemu-compat:hidden=,safe-missing=0x603000000013c103;0x6020000000110000")


def overflows(h: History, spec: str) -> bool:
    """Does ``spec`` need registers past its reserved range on ``h``?"""
    strategy = parse_strategy(spec)
    return len(strategy.layout(h).regs) > int(strategy.values["ranges"])


@examples(40)
@given(histories(max_releases=4, drift=True, overflow=True), st.sampled_from(OVERFLOW_SPECS),
       st.sampled_from(["all", "hypercall"]), st.data())
def test_engine_equals_spec_for_opt_in_overflow_with_and_without_drift(h, spec, view, data):
    """Both views: ``all`` (other registers drift between releases) and ``hypercall``."""
    h = h.with_registers(view)
    event(f"overflow past the reservation: {overflows(h, spec)}")
    assert_same(h, [spec], configurations(data.draw, h), vmms=WHOLE_LIST_VMMS)


def test_engine_equals_spec_for_opt_in_overflow_on_a_chosen_history():
    """300 vendor services past both reservations, TCR2_EL1 dropped at r2 and
    a DEMUX register added at r3; an opt-in overflow service turned on."""
    services = [{"name": f"V{k}", "space": "vendor-hyp", "introduced": f"r{min(3, k // 80)}",
                 "default": "off" if k % 50 == 7 else "on"} for k in range(300)]
    other = [{"id": "0x603000000013c103", "introduced": "r0", "removed": "r2"},
             {"id": "0x6020000000110000", "introduced": "r3"},
             {"id": "0x603000000013c100", "introduced": "r0"}]
    h = from_dict(_doc(registers_from="r1", service=services, other=other))
    for spec in OVERFLOW_SPECS:
        assert overflows(h, spec)
        layout = parse_strategy(spec).layout(h)
        ranges = int(parse_strategy(spec).values["ranges"])
        # past the reservation every service resets to 0; inside, each keeps its default
        for s, pairs, orig in zip(layout.history.services, layout.bits, h.services):
            assert s.default_on == (orig.default_on and pairs[0][0] < ranges)
    configs = [frozenset(), Setting(off=frozenset({"V3"}), on=frozenset({"V250", "V290"}))]
    for view in ("all", "hypercall"):
        assert_same(h.with_registers(view), OVERFLOW_SPECS, configs, vmms=WHOLE_LIST_VMMS)


# -- chosen cases ----------------------------------------------------------------------

def _doc(**extra) -> dict:
    doc = {"name": "case", "releases": ["r0", "r1", "r2", "r3"], "service": [], "firmware": []}
    doc.update(extra)
    return doc


def test_engine_equals_spec_without_services():
    h = from_dict(_doc(registers_from="r1", firmware=[
        {"name": "PSCI_VERSION", "id": "0x6030000000140000", "introduced": "r1",
         "reset": "0x10000", "accepts": ["0x2", "0x10000"],
         "changes": [{"release": "r3", "reset": "0x10001",
                      "accepts": ["0x2", "0x10000", "0x10001"]}]}]))
    assert_same(h, ["upstream", "raz-wi", "full-bitmap:width=2048", "invalidate-on-write:scope=fw"],
                [frozenset()])


@pytest.mark.parametrize("changes", [
    # a newer PSCI_VERSION the older kernels reject: refused below a threshold
    [{"release": "r2", "reset": "0x10001", "accepts": ["0x10000", "0x10001"]}],
    # a kernel that stops accepting the old value: forward refusals too
    [{"release": "r2", "reset": "0x10000", "accepts": ["0x10000"]}],
    # two bumps, one in the middle of the service history
    [{"release": "r1", "reset": "0x10000", "accepts": ["0x1", "0x10000"]},
     {"release": "r3", "reset": "0x10001", "accepts": ["0x1", "0x10000", "0x10001"]}],
])
def test_engine_equals_spec_on_firmware_value_changes(changes):
    h = from_dict(_doc(registers_from="r1", service=[
        {"name": "A", "space": "std-hyp", "introduced": "r0"},
        {"name": "B", "space": "vendor-hyp", "introduced": "r3"}], firmware=[
        {"name": "PSCI_VERSION", "id": "0x6030000000140000", "introduced": "r0",
         "reset": "0x1", "accepts": ["0x1"], "changes": changes},
        {"name": "WA", "id": "0x6030000000140001", "introduced": "r1", "reset": "0x1",
         "accepts": ["0x0", "0x1"], "on_write": "check"}]))
    assert_same(h, ["upstream", "raz-wi", "invalidate-on-write:scope=fw"],
                [frozenset(), frozenset({"A"})])


def test_engine_equals_spec_with_more_than_64_services_in_one_space():
    services = [{"name": f"V{k}", "space": "vendor-hyp", "introduced": f"r{min(3, k // 40)}",
                 "default": "off" if k >= 64 else "on"} for k in range(150)]
    h = from_dict(_doc(registers_from="r1", service=services))
    offs = [frozenset(), frozenset({"V3", "V70", "V149"})]
    assert_same(h, ["upstream", "raz-wi:ranges=2", "raz-einval:ranges=1", "wide:width=64",
                    "invalidate-on-write"], offs)


def test_engine_equals_spec_when_a_setting_turns_opt_in_services_on():
    """An opt-in service turned on joins a register an older kernel lists too."""
    h = from_dict(_doc(registers_from="r1", service=[
        {"name": "A", "space": "std-hyp", "introduced": "r0"},
        {"name": "X", "space": "std-hyp", "introduced": "r2", "default": "off"},
        {"name": "Y", "space": "vendor-hyp", "introduced": "r3", "default": "off"}]))
    configs = [Setting(on=frozenset({"X"})), Setting(off=frozenset({"A"}), on=frozenset({"X", "Y"}))]
    assert_same(h, ["upstream", "invalidate-on-write", "raz-wi", "raz-einval", "wide",
                    "full-bitmap:width=2048"], configs)


def test_engine_equals_spec_on_linux(linux):
    """Every strategy and VMM on the bundled history, default and a configuration."""
    configs = [frozenset(), frozenset({"PV_TIME", "PTP", "DISCOVER_IMPL_VER"})]
    specs = [spec for spec in strategies.DEFAULTS if small(linux, spec)]
    assert_same(linux, specs + ["invalidate-on-write:scope=fw", "full-bitmap:width=2048",
                                "wide:writes=invalidate", "full-bitmap:width=2048,spaces=all"],
                configs)


def test_old_qemu_is_refused_by_the_engine_on_linux_not_misjudged(linux):
    """An index-dependent ``saves`` (no VENDOR_HYP_BMAP_2): the engine says so."""
    strategy, policy = parse_strategy("upstream"), OldQemu()
    ok, reason = engine.supports(linux, strategy, policy)
    assert not ok and "saves some feature registers only" in reason
    auto = evaluate(linux, strategy, policy)
    assert (auto.backend, auto.reason) == ("spec", reason)
    last = len(linux.releases) - 1
    assert measures.cost_at(linux, strategy, policy, last).bytes_per_vcpu == 112


def test_engine_equals_spec_on_linux_full_bitmap_sample(linux):
    """``full-bitmap`` (2048 registers) on Linux: adjacent and 40 random pairs."""
    n = len(linux.releases)
    rng = np.random.default_rng(4)
    pairs = [(s, s + 1) for s in range(n - 1)] + [(s + 1, s) for s in range(0, n - 1, 3)]
    pairs += [tuple(p) for p in rng.integers(0, n, (40, 2)).tolist()]
    assert_same(linux, ["full-bitmap"], [frozenset()], pairs=pairs)


class Split(Strategy):
    """Test-only layout: every covered service has a bit in two registers.

    Register 0 (RAZ/WI) is listed from ``registers_from``; register 1
    (strict) from the release of the history's last service, so a service
    can have one register listed and the other not, which no shipped
    strategy does.  ``std`` services stay uncovered.
    """

    name = "split"
    summary = "test only"

    def build(self, history: History) -> Layout:
        rf = history.registers_from
        last = max((s.introduced for s in history.services), default=rf)
        regs = [FeatureReg(feat_reg(0), 64, rf, False),
                FeatureReg(feat_reg(1), 64, max(rf, last), True)]
        bits = [() if s.space == "std" else ((0, k % 64), (1, k % 64))
                for k, s in enumerate(history.services[:64])]
        return Layout(history, regs, bits + [()] * (len(history.services) - len(bits)))


@examples(60)
@given(histories(bulk=False), st.data())
def test_engine_equals_spec_when_a_service_spans_registers_listed_apart(h, data):
    assert_same(h, [Split()], configurations(data.draw, h))


# -- reductions --------------------------------------------------------------------------

@examples(75)
@given(histories(), spec_strategy(), st.sampled_from(sorted(POLICIES)), st.data())
def test_counts_and_score_equal_the_spec(h, spec, vmm, data):
    """Streaming counts (both modes, any chunk), the sweep's tally and the
    scorecard row match the spec."""
    assume(small(h, spec))
    configs = configurations(data.draw, h)
    strategy, policy = parse_strategy(spec), POLICIES[vmm]()
    assume(engine.supports(h, strategy, policy, configs)[0])
    want = evaluate(h, strategy, policy, configs, backend="spec")
    chunk = data.draw(st.integers(1, 50))
    for compress in (True, False):
        got = engine.counts(h, strategy, policy, configs, chunk_pairs=chunk, compress=compress)
        assert (got == measures.counts(want)).all(), (compress, got.tolist(),
                                                      measures.counts(want).tolist())
    got = evaluate(h, strategy, policy, configs, backend="engine")
    assert measures.score(got) == measures.score(want)
    check_tally(h, strategy, policy, configs, want)


def check_tally(h, strategy, policy, configs, want) -> None:
    """:func:`engine.tally` (the sweep's counts, no matrix) equals the spec's
    counted outcomes, and the scorecard from it equals the spec's."""
    counted, refused = engine.tally(h, strategy, policy, configs)
    assert counted.tolist() == measures.counts(want).tolist()
    assert refused.tolist() == measures.blamed(want).tolist()
    assert measures.score_counts(h, strategy, policy, counted, refused) == measures.score(want)
    via, _, outcomes = backends.tally(h, strategy, policy, configs)
    assert outcomes is None and via.tolist() == counted.tolist()


def test_packed_sets_round_trip():
    rng = np.random.default_rng(1)
    for k in (0, 1, 63, 64, 65, 200):
        bits = rng.random((3, k)) < 0.5
        words = pack(bits, words_for(k))
        assert words.dtype == np.uint64 and words.shape == (3, words_for(k))
        assert (unpack(words, k) == bits).all()
    # bit k is bit k % 64 of word k // 64
    one = np.zeros(130, bool)
    one[129] = True
    assert pack(one, 3).tolist() == [0, 0, 2]


@pytest.mark.parametrize("compress", [True, False])
def test_refused_and_unsupported_carry_no_sets(linux, compress):
    """Like the spec, loud outcomes report neither gained nor lost services."""
    r = engine.evaluate(linux, parse_strategy("wide"), POLICIES["qemu"](), compress=compress)
    assert (r.codes == CODES["unsupported"]).any()
    r2 = engine.evaluate(linux, parse_strategy("upstream"), POLICIES["qemu"](),
                         compress=compress)
    for res in (r, r2):
        loud = res.codes >= CODES["refused"]
        assert loud.any()
        assert not res.gained[loud].any() and not res.lost[loud].any()
