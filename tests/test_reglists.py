"""The other registers of every release (data/linux-reglists.toml).

Ground truth is the probe files: the ``reg_list_chunk`` records are parsed
here with a reader of the test's own, so a fault in
``hcsim.model.reglists.read_probe_lists`` cannot hide itself.  The QEMU cpreg
counts are the numbers QEMU reports for these kernels (issue 11, FACTS.md 5).
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest

from hcsim.model.reglists import Change, load_reglists, sysreg_name

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
TOML = DATA / "linux-reglists.toml"
PROBES = DATA / "kernel-probe"


@pytest.fixture(scope="module")
def rl():
    return load_reglists(TOML)


def probe_lists(path: Path) -> dict[str, list[int]]:
    """VM -> whole register list, straight from the records."""
    out: dict[str, list[int]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["t"] == "reg_list_chunk":
            out.setdefault(rec["vm"], []).extend(int(x, 16) for x in rec["ids"])
    return out


def cls(i: int) -> int:
    return (i >> 16) & 0xFFF


def other_of(ids) -> set[int]:
    return {i for i in ids if cls(i) not in (0x10, 0x14, 0x15, 0x16)}


def sysreg(op0, op1, crn, crm, op2) -> int:
    # ARM64_SYS_REG() of arch/arm64/include/uapi/asm/kvm.h, U64
    return (0x6000000000000000 | 0x0030000000000000 | 0x13 << 16
            | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2)


NO_PMU: frozenset[str] = frozenset()
PMU = frozenset({"pmu"})


# ---- QEMU's cpreg counts ------------------------------------------------------

# kernel file, release it stands for, QEMU cpreg count (all but CORE and SVE),
# KVM_GET_REG_LIST total
COUNTS = [
    ("5.10.0-32-arm64.jsonl", "v5.10", 237, 312),
    ("6.1.0-56-arm64.jsonl", "v6.1", 167, 242),
    ("6.12.117+deb13-arm64.jsonl", "v6.12", 184, 259),
    ("6.16.12+deb13-arm64.jsonl", "v6.16", 182, 257),
    ("7.3.4+deb13-arm64.jsonl", "v7.3", 182, 257),
]


@pytest.mark.parametrize("name,release,cpreg,total", COUNTS, ids=[c[0] for c in COUNTS])
def test_probe_lists_reproduce_qemu_cpreg_counts(rl, name, release, cpreg, total):
    lists = probe_lists(PROBES / name)
    for vm in ("A", "N"):
        ids = lists[vm]
        assert len(ids) == total
        hypercall = [i for i in ids if cls(i) in (0x14, 0x16)]
        core_sve = [i for i in ids if cls(i) in (0x10, 0x15)]
        other = rl.other(release, "max", NO_PMU)
        assert len(other) + len(hypercall) == cpreg
        assert len(other) + len(hypercall) + len(core_sve) == total


def test_counts_hold_on_every_host(rl):
    # the modelled list is the same on every host profile; the count check
    # of 6.12 -> 6.16 refuses (184 > 182) whatever the host
    for host in rl.hosts:
        assert len(rl.other("v6.12", host, NO_PMU)) + 7 == 184
        assert len(rl.other("v6.16", host, NO_PMU)) + 8 == 182


# ---- every probed list is the kernel's own ------------------------------------

def probe_entries():
    doc = tomllib.loads(TOML.read_text())
    return [(p["release"], f) for p in doc["probe"] for f in p["files"]]


def host_of(file_name: str) -> str:
    m = re.search(r"\.cpu-([a-z0-9-]+)", file_name)
    return m.group(1) if m else "max"


@pytest.mark.parametrize("release,name", probe_entries(), ids=[e[1] for e in probe_entries()])
def test_probed_list_is_the_files_list(rl, release, name):
    lists = probe_lists(PROBES / name)
    host = host_of(name)
    for vm, ids in lists.items():
        features = PMU if vm == "P" else NO_PMU
        got = rl.other(release, host, features)
        assert list(got) == sorted(other_of(ids))
        assert set(got) == other_of(ids)


def test_host_and_mode_never_change_the_list():
    # the finding fill_hosts rests on: per kernel, every file (host profile,
    # kvm-arm.mode) lists the same other registers for VMs A and N
    by_kernel: dict[str, set[frozenset[int]]] = {}
    for path in sorted(PROBES.glob("*.jsonl")):
        kernel = json.loads(path.read_text().splitlines()[0])["release"]
        for vm, ids in probe_lists(path).items():
            if vm in ("A", "N"):
                by_kernel.setdefault(kernel, set()).add(frozenset(other_of(ids)))
    assert by_kernel
    assert {k: len(v) for k, v in by_kernel.items()} == {k: 1 for k in by_kernel}


def test_lists_are_sorted_other_ids(rl):
    for release in rl.releases:
        for host in rl.hosts:
            for fs in rl.feature_sets:
                ids = rl.other(release, host, fs)
                assert list(ids) == sorted(set(ids))
                assert not [i for i in ids if cls(i) in (0x10, 0x14, 0x15, 0x16)]


def test_releases_are_the_linux_historys(rl):
    upstream = tomllib.loads((DATA / "linux-upstream.toml").read_text())
    assert list(rl.releases) == upstream["releases"]


# ---- the cited changes ---------------------------------------------------------

def test_v6_13_stops_listing_tcr2_and_pir(rl):
    for host in rl.hosts:
        for fs in (NO_PMU, PMU):
            before = set(rl.other("v6.12", host, fs))
            after = set(rl.other("v6.13", host, fs))
            assert {sysreg_name(i) for i in before - after} == {"TCR2_EL1", "PIRE0_EL1", "PIR_EL1"}
            assert after <= before
    tcr2 = sysreg(3, 0, 2, 0, 3)
    assert tcr2 in rl.other("v6.5", "neoverse-n1", NO_PMU)
    assert tcr2 not in rl.other("v6.4", "neoverse-n1", NO_PMU)
    assert tcr2 not in rl.other("v7.3", "neoverse-n1", NO_PMU)


def test_pmu_registers_hidden_without_pmu_from_v5_11(rl):
    gone = set(rl.other("v5.10", "max", NO_PMU)) - set(rl.other("v5.11", "max", NO_PMU))
    assert len(gone) == 74
    assert all(sysreg_name(i).startswith("PM") for i in gone)
    assert sysreg(3, 3, 9, 13, 0) in gone                      # PMCCNTR_EL0
    # a vCPU with a PMU keeps them on every release since PMCR_EL0 joined (v5.3)
    for release in rl.releases[rl.releases.index("v5.3"):]:
        assert gone <= set(rl.other(release, "max", PMU))
    assert gone - set(rl.other("v5.2", "max", PMU)) == {sysreg(3, 3, 9, 12, 0)}
    assert rl.other("v5.10", "max", PMU) == rl.other("v5.10", "max", NO_PMU)


def anchors_around(rl, change: Change, host: str, fs: frozenset[str]):
    """The probed releases right before and at-or-after a change."""
    idx = rl.releases.index(change.release)
    probed = rl.anchors(host, fs)
    before = [r for r in probed if rl.releases.index(r) < idx]
    after = [r for r in probed if rl.releases.index(r) >= idx]
    return (before[-1] if before else None), (after[0] if after else None)


def probed_other(rl, release: str, host: str, fs) -> set[int]:
    """The list of a probed release, re-read from its files by the test."""
    srcs = rl.probe_sources(release, host, fs)
    assert srcs
    name, vm = srcs[0].split(" ")[0].rsplit(":", 1)
    return other_of(probe_lists(PROBES / name)[vm])


def test_every_change_shows_between_its_neighbouring_probes(rl):
    checked = 0
    for c in rl.changes:
        for host in rl.hosts:
            for name, fs in rl.feature_set_names.items():
                if not c.applies(name, host):
                    continue
                before, after = anchors_around(rl, c, host, fs)
                if before is None or after is None:
                    continue
                # another change between the same probes touching the same ids
                # would hide this one; the data has none
                lo, hi = rl.releases.index(before), rl.releases.index(after)
                others = [d for d in rl.changes if d is not c and d.applies(name, host)
                          and lo < rl.releases.index(d.release) <= hi
                          and set(d.added + d.removed) & set(c.added + c.removed)]
                assert not others
                old = probed_other(rl, before, host, fs)
                new = probed_other(rl, after, host, fs)
                assert set(c.removed) <= old and not set(c.removed) & new, (c.commit, host, name)
                assert set(c.added) <= new and not set(c.added) & old, (c.commit, host, name)
                checked += 1
    assert checked >= 8 * len(rl.hosts)


def test_changes_carry_each_probe_to_the_next(rl):
    assert rl.mismatches() == []


def test_only_the_gap_is_unverified_without_pmu(rl):
    unverified = [r for r in rl.releases if not rl.verified(r, "neoverse-n1", NO_PMU)]
    gap = rl.gaps[0]
    i, j = rl.releases.index(gap.first), rl.releases.index(gap.last)
    assert unverified == list(rl.releases[i:j + 1])


def test_unverified_changes_say_why_and_name_no_commit(rl):
    for c in rl.changes:
        if c.verified:
            assert re.fullmatch(r"[0-9a-f]{12}", c.commit)
        else:
            assert c.note and not c.commit
    # a release derived through an unverified change is unverified; a probed
    # one is not
    for c in rl.changes:
        if not c.verified:
            for name in c.feature_sets:
                fs = rl.feature_set_names[name]
                if c.release in rl.anchors("max", fs):
                    assert rl.verified(c.release, "max", fs)


def test_id_aa64zfr0_hidden_on_v5_2_to_v5_9(rl):
    zfr0 = sysreg(3, 0, 0, 4, 4)
    shown = [r for r in rl.releases if zfr0 in rl.other(r, "max", NO_PMU)]
    assert "v5.1" in shown and "v5.10" in shown
    assert not {"v5.2", "v5.5", "v5.9"} & set(shown)


def test_pmcr_el0_listed_from_v5_3(rl):
    # enumerated by accident in v5.3, hidden again without a PMU from v5.11
    pmcr = sysreg(3, 3, 9, 12, 0)
    for fs in (NO_PMU, PMU):
        assert pmcr not in rl.other("v5.2", "max", fs)
        assert pmcr in rl.other("v5.3", "max", fs)
        assert pmcr in rl.other("v5.10", "max", fs)
    assert pmcr not in rl.other("v5.11", "max", NO_PMU)
    assert pmcr in rl.other("v5.11", "max", PMU)


# ---- names ------------------------------------------------------------------------

@pytest.mark.parametrize("reg,name", [
    (sysreg(3, 0, 2, 0, 3), "TCR2_EL1"),
    (sysreg(3, 0, 10, 2, 2), "PIRE0_EL1"),
    (sysreg(3, 0, 10, 2, 3), "PIR_EL1"),
    (sysreg(3, 3, 9, 13, 0), "PMCCNTR_EL0"),
    (sysreg(3, 3, 14, 3, 2), "KVM_REG_ARM_TIMER_CNT"),     # uapi: CNT has CNTV_CVAL's encoding
    (sysreg(3, 3, 14, 0, 2), "KVM_REG_ARM_TIMER_CVAL"),
    (sysreg(3, 3, 14, 0, 1), "KVM_REG_ARM_PTIMER_CNT"),
    (sysreg(2, 0, 1, 1, 4), "OSLSR_EL1"),
    (sysreg(2, 0, 0, 15, 7), "DBGWCR15_EL1"),
    (sysreg(3, 3, 14, 11, 6), "PMEVCNTR30_EL0"),
    (sysreg(3, 3, 14, 12, 0), "PMEVTYPER0_EL0"),
    (sysreg(3, 3, 14, 15, 7), "PMCCFILTR_EL0"),
    (sysreg(3, 0, 0, 4, 4), "ID_AA64ZFR0_EL1"),
    (sysreg(3, 1, 2, 0, 3), "S3_1_C2_C0_3"),
    (sysreg(3, 0, 0, 3, 3), "S3_0_C0_C3_3"),
    (0x6020000000110000, "CCSIDR_EL1[CSSELR=0]"),
    (0x602000000011000D, "CCSIDR_EL1[CSSELR=13]"),
    (0x6030000000160003, "VENDOR_HYP_BMAP_2"),
    (0x6030000000100000, "0x6030000000100000"),
])
def test_sysreg_name(reg, name):
    assert sysreg_name(reg) == name


def test_every_listed_register_of_a_known_family_is_named(rl):
    # unnamed system registers may only be unallocated ID registers (3,0,0,x,y)
    for fs in rl.feature_sets:
        for release in rl.releases:
            for i in rl.other(release, "max", fs):
                n = sysreg_name(i)
                if n.startswith("S3_") or n.startswith("0x"):
                    assert n.startswith("S3_0_C0_C"), n


# ---- more probe files are valid records ------------------------------------------

def _records():
    path = REPO / "tools" / "kvm-probe" / "records.py"
    spec = importlib.util.spec_from_file_location("kvm_probe_records_rl", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MORE = sorted((PROBES / "more").glob("*.jsonl"))


@pytest.mark.parametrize("path", MORE, ids=[p.name for p in MORE])
def test_more_probe_files_are_valid(path):
    assert _records().validate_file(path) == []
    first = json.loads(path.read_text().splitlines()[0])
    assert path.name.startswith(first["release"] + ".")


def test_pmu_vm_has_the_pmu_feature():
    records = _records()
    good = {"t": "vcpu_init", "vm": "P", "idx": 0, "psci_0_2": 1, "features0": "0xc",
            "ret": 0, "errno": ""}
    assert records.validate_record(good, "x") == []
    assert records.validate_record(dict(good, features0="0x4"), "x")      # P without PMU
    assert records.validate_record(dict(good, psci_0_2=0), "x")           # disagrees with bit 2


# ---- bad input ------------------------------------------------------------------

def test_unknown_release_host_or_feature_set(rl):
    for args in (("v9.9", "max", NO_PMU), ("v6.12", "graviton9", NO_PMU),
                 ("v6.12", "max", frozenset({"sve"})), ("v6.12", "max", "pmu")):
        with pytest.raises(ValueError) as e:
            rl.other(*args)
        assert str(TOML) in str(e.value) and "\n" not in str(e.value)


def variant(tmp_path: Path, text: str) -> Path:
    text = text.replace('probe_dir = "kernel-probe"', f'probe_dir = "{PROBES}"')
    p = tmp_path / "reglists.toml"
    p.write_text(text)
    return p


BASE = TOML.read_text()
# the v6.5 TCR2_EL1 entry, up to its source
TCR2_ADD = '{ id = "0x603000000013c103", name = "TCR2_EL1" },\n]\nverified = true\nsource = "Joey'


def sub(old: str, new: str):
    return lambda t: t.replace(old, new)


@pytest.mark.parametrize("edit,words", [
    (lambda t: t + "\n[[[oops\n", "not TOML"),
    (sub("format = 1", "format = 2"), "format"),
    (sub('default_host = "neoverse-n1"', 'default_host = "m1"'), "default_host"),
    (sub('"6.1.0-56-arm64.vhe.jsonl", ', '"6.1.0-56-arm64.nosuch.jsonl", '), "nosuch"),
    (sub('"6.1.0-56-arm64.vhe.jsonl", ', '"6.1.0-99-arm64.vhe.jsonl", '), "6.1.0-99"),
    (sub(TCR2_ADD, TCR2_ADD.replace('name = "TCR2_EL1"', 'name = "TCR_EL1"')), "TCR_EL1"),
    (sub(TCR2_ADD, TCR2_ADD.replace("0x603000000013c103", "0x6030000000140000")), "class 0x14"),
    (sub(TCR2_ADD, TCR2_ADD.replace("0x603000000013c103", "zz")), "zz"),
    # a change that removes what the previous probe does not list
    (sub('release = "v6.13"\ncommit = "0fcb4eea5345"', 'release = "v6.3"\ncommit = "0fcb4eea5345"'),
     "0fcb4eea5345"),
    # a change between the wrong probes: 5.10 + changes no longer gives 6.1
    (sub('release = "v6.5"\ncommit = "fbff56068232"', 'release = "v5.11"\ncommit = "fbff56068232"'),
     "do not join"),
    (sub('release = "v6.4"', 'release = "v9.4"'), "v9.4"),
    (sub('feature_sets = ["no-pmu"]', 'feature_sets = ["nopmu"]'), "nopmu"),
    (lambda t: t.replace('commit = "680232a94c12"\ntitle', 'commit = "680232a94c12"\nverified = false\ntitle')
     .replace('verified = true\nsource = "Marc Zyngier', 'source = "Marc Zyngier'), "note"),
    (sub('vms = ["P"]', 'vms = ["A"]'), "VM 'A'"),
    (sub("fill_hosts = true", 'fill_hosts = "yes"'), "fill_hosts"),
])
def test_bad_data_file(tmp_path, edit, words):
    text = edit(BASE)
    assert text != BASE
    path = variant(tmp_path, text)
    with pytest.raises(ValueError) as e:
        load_reglists(path)
    msg = str(e.value)
    assert str(path) in msg and words in msg and "\n" not in msg


def test_data_file_variant_loads(tmp_path):
    # the fixture for the bad-input cases is itself good
    assert load_reglists(variant(tmp_path, BASE)).other("v6.12", "max", NO_PMU)


def test_a_list_no_probe_supports_is_refused(tmp_path):
    # without the v5.11 change the 5.10 and 6.1 probes cannot be joined
    start = BASE.index('[[change]]\nrelease = "v5.11"')
    end = BASE.index("[[change]]", start + 1)
    path = variant(tmp_path, BASE[:start] + BASE[end:])
    with pytest.raises(ValueError) as e:
        load_reglists(path)
    msg = str(e.value)
    assert str(path) in msg and "v5.10 -> v6.1" in msg and "PMCCNTR_EL0" in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(ValueError) as e:
        load_reglists(tmp_path / "none.toml")
    assert "none.toml" in str(e.value)
