"""The fleet baseline (hcsim.analyses.baseline) and the Setting it is written with."""

from __future__ import annotations

import json

import pytest
from conftest import make
from histgen import histories
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli_errors import assert_one_line_error, run

from hcsim.analyses import baseline
from hcsim.analyses.chain import migrate_chain
from hcsim.errors import InputError
from hcsim.evaluation import spec as scalar
from hcsim.frontends import baseline_cmd
from hcsim.model import strategies
from hcsim.model import vmm as vmm_mod
from hcsim.model.config import Setting
from hcsim.model.kvm import Kernel

UPSTREAM = strategies.parse("upstream")


# -- Setting: the configuration extension -------------------------------------------

@pytest.mark.parametrize("spec", ["upstream", "raz-wi", "full-bitmap"])
def test_setting_with_only_off_writes_what_the_plain_config_writes(linux, spec):
    strategy = strategies.parse(spec)
    off = frozenset({"PTP", "TRNG_V1_0"})
    for rel in range(len(linux.releases)):
        kernel = Kernel(linux, rel, strategy)
        assert scalar.configured_values(kernel, Setting(off=off)) == \
            scalar.configured_values(kernel, off)


def test_setting_turns_an_opt_in_service_on(linux):
    v615 = linux.index("v6.15")
    got = scalar.migrate(linux, UPSTREAM, vmm_mod.parse("qemu"), v615, v615,
                           Setting(on=frozenset({"DISCOVER_IMPL_VER"})))
    assert got.outcome == "preserved"
    cpus = scalar.boot(Kernel(linux, v615, UPSTREAM), 1)
    vmm_mod.parse("qemu").configure(cpus, scalar.configured_values(
        cpus[0].vm.kernel, Setting(on=frozenset({"DISCOVER_IMPL_VER"}))))
    # fw-pseudo-registers.rst: VENDOR_HYP_BMAP_2 bit 0 is DISCOVER_IMPL_VER.
    assert cpus[0].get_one_reg(0x6030000000160003) == 0x1
    assert "DISCOVER_IMPL_VER" in cpus[0].vm.guest_view()


def test_setting_writes_psci_version_so_v615_can_go_back_to_v612(linux):
    # v6.13+ resets PSCI_VERSION to 1.3 (0x10003); v6.12 accepts up to 1.1.
    tolerant = vmm_mod.parse("qemu-tolerant")
    src, dst = linux.index("v6.15"), linux.index("v6.12")
    plain = scalar.migrate(linux, UPSTREAM, tolerant, src, dst)
    assert plain.outcome == "refused" and "PSCI_VERSION" in plain.detail
    pinned = scalar.migrate(linux, UPSTREAM, tolerant, src, dst,
                              Setting(firmware=(("PSCI_VERSION", 0x10001),)))
    assert pinned.outcome == "preserved"


def test_crosvm_can_write_firmware_values_but_not_bitmaps(linux):
    kernel = Kernel(linux, "v6.15", UPSTREAM)
    cpus = scalar.boot(kernel, 1)
    values = scalar.configured_values(kernel, Setting(off=frozenset({"PTP"}),
                                                        firmware=(("PSCI_VERSION", 0x10000),)))
    vmm_mod.parse("crosvm").configure(cpus, values)
    assert cpus[0].get_one_reg(0x6030000000140000) == 0x10000
    assert "PTP" in cpus[0].vm.guest_view()


def test_setting_rejects_a_service_both_on_and_off():
    with pytest.raises(InputError, match="both on and off"):
        Setting(off=frozenset({"PTP"}), on=frozenset({"PTP"}))


# -- the baseline, hand-derived -----------------------------------------------------

FOUR_HOSTS = [baseline.HostSpec(r, "max") for r in ("r1", "r2", "r3")]
LINUX_FLEET = "v6.1,v6.6,v6.12,v6.15"


def compute(h, spec, policy, hosts, opt_in=False):
    if isinstance(hosts, str):
        hosts = baseline.parse_hosts(hosts, h)
    return baseline.compute(h, strategies.parse(spec), vmm_mod.parse(policy), hosts, opt_in)


def by_pair(b):
    return {(p.src, p.dst): p for p in b.pairs}


def test_four_under_qemu_keeps_what_r1_has_and_cannot_go_down_from_r3(four):
    b = compute(four, "upstream", "qemu", FOUR_HOSTS)
    # PV_LOCK (r2) and PTP (r3) are not on every host: off.
    assert b.services == {"PV_TIME", "TRNG"}
    values = {r.name: r.value for r in b.registers}
    assert values == {"KVM_REG_ARM_PSCI_VERSION": 0x10000, "KVM_REG_ARM_STD_BMAP": 0x1,
                      "KVM_REG_ARM_STD_HYP_BMAP": 0x1, "KVM_REG_ARM_VENDOR_HYP_BMAP": 0x0}
    pairs = by_pair(b)
    # r3 lists 4 registers, r1/r2 three: QEMU's count check, whatever the values.
    for src, dst in (("r3", "r1"), ("r3", "r2")):
        assert pairs[(src, dst)].status == "impossible"
        assert pairs[(src, dst)].detail.startswith(
            "count 4 > 3 (QEMU: failed to load cpu:cpreg_vmstate_array_len)")
    # Up to r3, QEMU writes back VENDOR_HYP_BMAP as read at creation (0x1): PTP appears.
    for src in ("r1", "r2"):
        assert (pairs[(src, "r3")].status, pairs[(src, "r3")].gained) == ("drift", {"PTP"})
    assert {k for k, p in pairs.items() if p.safe} == {
        ("r1", "r1"), ("r1", "r2"), ("r2", "r1"), ("r2", "r2"), ("r3", "r3")}
    costs = {c.host: c.given_up for c in b.costs}
    assert costs == {"r1": set(), "r2": {"PV_LOCK"}, "r3": {"PV_LOCK", "PTP"}}


def test_reserved_registers_are_named_generically_in_the_explanation(four):
    # Under raz-wi on r1 -> r0 (no feature registers before r1): -ENOENT on register 0,
    # which is not KVM_REG_ARM_STD_BMAP under this strategy.
    b = compute(four, "raz-wi", "firecracker", [baseline.HostSpec("r0", "max"),
                                                baseline.HostSpec("r1", "max")])
    pair = by_pair(b)[("r1", "r0")]
    assert pair.status == "impossible" and pair.detail == "ENOENT on FW_FEAT_BMAP(0, U64)"
    assert pair.why.startswith("the destination lacks FW_FEAT_BMAP(0, U64)")
    assert {r.name for r in b.registers} >= {"FW_FEAT_BMAP(0, U64)", "KVM_REG_ARM_PSCI_VERSION"}


def test_zero_unknown_makes_the_forward_pairs_safe(four):
    pairs = by_pair(compute(four, "upstream", "zero-unknown", FOUR_HOSTS))
    # zero-unknown writes 0 to VENDOR_HYP_BMAP, absent from the stream: the baseline value.
    assert pairs[("r1", "r3")].safe and pairs[("r2", "r3")].safe
    assert pairs[("r3", "r1")].status == "impossible"


def test_linux_upstream_qemu_fleet(linux):
    b = compute(linux, "upstream", "qemu", LINUX_FLEET)
    assert b.services == {"PV_TIME", "TRNG_V1_0", "FUNC_FEAT", "PTP"}
    values = {r.name: r.value for r in b.registers}
    # PSCI 1.1 is the newest version v6.1 accepts (v5.18 bump); v6.15 resets to 1.3.
    assert values["KVM_REG_ARM_PSCI_VERSION"] == 0x10001
    assert values["KVM_REG_ARM_VENDOR_HYP_BMAP"] == 0x3
    assert values["KVM_REG_ARM_VENDOR_HYP_BMAP_2"] == 0x0
    assert values["KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3"] is None   # a check register
    # The VENDOR_HYP_BMAP_2 break: refused even though the register is 0.
    assert {(p.src, p.dst) for p in b.impossible} == {
        ("v6.15", "v6.1"), ("v6.15", "v6.6"), ("v6.15", "v6.12")}
    assert all("VENDOR_HYP_BMAP_2 (sent although it is 0)" in p.why for p in b.impossible)
    assert not b.drifting
    v615 = next(c for c in b.costs if c.host == "v6.15")
    assert v615.firmware == (("PSCI_VERSION", 0x10003, 0x10001),) and not v615.given_up


def test_linux_baseline_makes_qemu_tolerant_safe_where_the_default_is_refused(linux):
    b = compute(linux, "upstream", "qemu-tolerant", LINUX_FLEET)
    assert b.safe
    tolerant = vmm_mod.parse("qemu-tolerant")
    src, dst = linux.index("v6.15"), linux.index("v6.12")
    # Without the baseline, PSCI 1.3 is refused by v6.12.
    assert scalar.migrate(linux, UPSTREAM, tolerant, src, dst).outcome == "refused"


@pytest.mark.parametrize("spec", ["upstream", "raz-wi"])
def test_stable_workaround_level_cannot_be_configured(linux, spec):
    b = compute(linux, spec, "qemu-tolerant", "v6.1@max,6.1.0-56-arm64@max")
    pair = by_pair(b)[("v6.1@max", "6.1.0-56-arm64@max")]
    # -cpu max: mainline v6.1 reads WORKAROUND_3 = 2; the Debian kernel carries the
    # v6.15 level change (e403e8538359) and accepts only 0.
    assert pair.status == "impossible"
    assert pair.detail == "EINVAL on KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3"
    assert "0x2" in pair.why and "not configurable" in pair.why
    assert by_pair(b)[("6.1.0-56-arm64@max", "v6.1@max")].safe


def test_opt_in_services_only_with_opt_in(linux):
    plain = compute(linux, "upstream", "qemu", "v6.15,v6.16")
    assert not plain.services & {"DISCOVER_IMPL_VER", "DISCOVER_IMPL_CPUS"}
    opted = compute(linux, "upstream", "qemu", "v6.15,v6.16", opt_in=True)
    assert {"DISCOVER_IMPL_VER", "DISCOVER_IMPL_CPUS"} <= opted.services
    values = {r.name: r.value for r in opted.registers}
    assert values["KVM_REG_ARM_VENDOR_HYP_BMAP_2"] == 0x3 and opted.safe
    assert all(c.turned_on == {"DISCOVER_IMPL_VER", "DISCOVER_IMPL_CPUS"} for c in opted.costs)


def test_crosvm_writes_psci_but_not_bitmaps(linux):
    b = compute(linux, "upstream", "crosvm", "v6.1,v6.15")
    notes = {r.name: (r.value, r.note) for r in b.registers}
    assert notes["KVM_REG_ARM_PSCI_VERSION"] == (0x10001, "")
    value, note = notes["KVM_REG_ARM_STD_BMAP"]
    assert value is None and "crosvm cannot write it" in note


def test_no_common_psci_version_is_reported():
    hist = make('''
releases = ["a", "b"]
[[firmware]]
name = "PSCI_VERSION"
id = "0x6030000000140000"
introduced = "a"
reset = "0x10000"
accepts = ["0x10000"]
changes = [{ release = "b", reset = "0x10001", accepts = ["0x10001"] }]
''')
    b = compute(hist, "upstream", "qemu", "a,b")
    assert b.notes and "no PSCI_VERSION value" in b.notes[0]
    assert by_pair(b)[("b", "a")].status == "impossible"


def test_render_formats(linux):
    b = compute(linux, "upstream", "qemu", LINUX_FLEET)
    text = baseline_cmd.render(b, "text")
    assert all(len(line) <= 72 for line in text.splitlines()), text
    doc = json.loads(baseline_cmd.render(b, "json"))
    assert doc["safe"] is False and len(doc["pairs"]) == 16
    assert {(p["src"], p["dst"]) for p in doc["pairs"] if p["status"] == "impossible"} == \
        {(p.src, p.dst) for p in b.impossible}
    csv_text = baseline_cmd.render(b, "csv")
    assert csv_text.splitlines()[0] == ",".join(baseline_cmd.CSV_COLUMNS)
    assert "pair,v6.15,v6.12,,impossible,refused," in csv_text
    assert "| KVM_REG_ARM_PSCI_VERSION | 0x6030000000140000 | 0x10001 | 4/4 |" in \
        baseline_cmd.render(b, "markdown")


# -- properties ----------------------------------------------------------------------

SPECS = ["upstream", "invalidate-on-write", "invalidate-on-write:scope=fw",
         "raz-wi:ranges=1", "full-bitmap:width=1024", "raz-einval:ranges=1"]


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from(SPECS), st.sampled_from(sorted(vmm_mod.REGISTRY)),
       st.booleans(), st.data())
def test_a_baseline_guest_is_never_lost_or_refused_where_the_baseline_claims_safety(
        h, spec, policy, opt_in, data):
    names = data.draw(st.lists(st.sampled_from(h.releases), min_size=1, max_size=4,
                               unique=True))
    hosts = [baseline.HostSpec(n, h.host) for n in names]
    strategy, v = strategies.parse(spec), vmm_mod.parse(policy)
    b = baseline.compute(h, strategy, v, hosts, opt_in)
    supported_everywhere = frozenset.intersection(
        *(frozenset(s.name for s in h.supported(h.index(n))) for n in names))
    assert b.services <= supported_everywhere
    for p in b.pairs:
        # Independent path: a fresh VM configured by scalar.migrate.
        m = scalar.migrate(h, strategy, v, h.index(p.src), h.index(p.dst), b.setting)
        assert m.outcome == p.outcome, (p, m)
        if p.status != "impossible":
            assert m.outcome not in ("lost", "mixed", "refused", "unsupported"), (p, m)
        if p.safe:
            assert m.outcome == "preserved", (p, m)
    # Safety composes: any walk through safe pairs keeps the boot view.
    safe = b.safe_pairs()
    start = data.draw(st.sampled_from(names))
    walk = [start]
    for _ in range(data.draw(st.integers(0, 4))):
        nexts = sorted(d for s, d in safe if s == walk[-1])
        if not nexts:
            break
        walk.append(data.draw(st.sampled_from(nexts)))
    c = migrate_chain(h, strategy, v, walk, b.setting)
    assert all(step.outcome == "preserved" for step in c.hops), c
    assert not c.ever_lost and c.final_view == c.boot_view


@settings(max_examples=40, deadline=None)
@given(histories(), st.sampled_from([s for s in SPECS if "scope=fw" not in s]),
       st.sampled_from(sorted(vmm_mod.REGISTRY)), st.data())
def test_a_fleet_of_one_kind_of_host_is_safe(h, spec, policy, data):
    name = data.draw(st.sampled_from(h.releases))
    b = compute(h, spec, policy, [baseline.HostSpec(name, h.host)])
    assert b.safe or b.pairs[0].outcome == "unsupported", b.pairs


# -- command line --------------------------------------------------------------------

def test_cli_baseline_text_and_json(tmp_path):
    code, out, err = run(["baseline", "--history", "linux", "--registers", "hypercall",
                          "--strategy", "upstream",
                          "--vmm", "qemu", "--releases", LINUX_FLEET])
    assert code == 0 and err == ""
    assert "PSCI_VERSION                0x10001  4/4" in out
    assert "13 safe, 0 drift, 3 impossible" in out
    target = tmp_path / "b.json"
    code, out, _ = run(["baseline", "--history", "linux", "--registers", "hypercall",
                          "--strategy", "upstream",
                        "--vmm", "qemu-tolerant", "--releases", LINUX_FLEET,
                        "--format", "json", "--output", str(target)])
    assert code == 0 and out == "" and json.loads(target.read_text())["safe"] is True


def test_cli_baseline_from_an_inventory(tmp_path):
    inv = tmp_path / "fleet.csv"
    inv.write_text("group,hosts,kernel,cpu\nold,10,v6.1,\nnew,5,v6.15,\n")
    code, out, _ = run(["baseline", "--history", "linux", "--registers", "hypercall",
                          "--strategy", "upstream",
                        "--vmm", "qemu", "--hosts", str(inv), "--format", "csv"])
    assert code == 0
    assert "pair,v6.15,v6.1,,impossible,refused," in out


@pytest.mark.parametrize("extra, fragment", [
    (["--releases", "v6.1,v9.9"], "unknown kernel 'v9.9'"),
    (["--releases", "v6.1,"], "empty kernel name"),
    (["--releases", "v6.1@pentium"], "unknown host CPU profile 'pentium'"),
    (["--releases", "v6.1", "--hosts", "x.csv"], "not allowed with argument"),
    ([], "one of the arguments --hosts --releases is required"),
    (["--hosts", "nowhere.toml"], "nowhere.toml: no such inventory file"),
    (["--releases", "v6.1", "--format", "yaml"], "unknown format 'yaml'"),
    (["--releases", "v6.1", "--output", "/nonexistent/dir/x"], "directory does not exist"),
])
def test_cli_baseline_bad_input(extra, fragment):
    code, out, err = run(["baseline", "--history", "linux", "--registers", "hypercall",
                          "--strategy", "upstream",
                          "--vmm", "qemu", *extra])
    assert_one_line_error(code, out, err, fragment)
