"""The evidence tables of notebook 09 (:mod:`hcsim.analyses.context`).

Each test checks a property the table must have whatever the data, on
small histories and probe files written here, and the few facts the
notebook's verdicts rest on against the bundled data.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import make

import hcsim
from hcsim.analyses import context
from hcsim.model.history import data_path

PROBES = data_path("kernel-probe")

#: r1 adds a std-hyp service; r2 opens vendor-hyp (a new register, default on).
NEW_REGISTER = """
name = "newreg"
releases = ["r0", "r1", "r2"]
registers_from = "{registers_from}"
[[service]]
name = "PV_TIME"
space = "std-hyp"
introduced = "r0"
[[service]]
name = "PV_LOCK"
space = "std-hyp"
introduced = "r1"
[[service]]
name = "PTP"
space = "vendor-hyp"
introduced = "r2"
"""


# -- protected mode ---------------------------------------------------------------

def copy_probe(tmp_path, kernel: str, edit=None):
    """The bundled nVHE probe of ``kernel`` and a protected copy, optionally edited."""
    base = PROBES / f"{kernel}.jsonl"
    shutil.copy(base, tmp_path / base.name)
    lines = [json.loads(x) for x in base.read_text().splitlines() if x.strip()]
    if edit:
        edit(lines)
    (tmp_path / f"{kernel}.protected.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n")


def test_an_identical_protected_probe_has_no_differing_answer(tmp_path):
    copy_probe(tmp_path, "6.1.0-56-arm64")
    row = context.protected_probes(tmp_path).iloc[0]
    assert row["differing"] == 0 and row["same_list"] and row["vm_types"] == "default"
    assert row["fw_ids"] == 7          # 4 firmware + 3 bitmaps on 6.1


def test_one_changed_answer_and_a_protected_vm_type_are_seen(tmp_path):
    def edit(lines):
        get = next(x for x in lines if x["t"] == "get")
        get["val"] = "0xdead"
        next(x for x in lines if x["t"] == "create_vm")["type"] = "protected"
    copy_probe(tmp_path, "6.1.0-56-arm64", edit)
    row = context.protected_probes(tmp_path).iloc[0]
    assert row["differing"] == 2           # the GET and the create_vm record
    assert "protected" in row["vm_types"].split(",")


def test_a_shorter_list_is_not_the_same_list(tmp_path):
    def edit(lines):
        chunk = next(x for x in lines if x["t"] == "reg_list_chunk" and x["vm"] == "A")
        chunk["ids"] = chunk["ids"][:-1]
    copy_probe(tmp_path, "6.1.0-56-arm64", edit)
    assert not context.protected_probes(tmp_path).iloc[0]["same_list"]


def test_bundled_protected_probes_answer_as_nvhe():
    """data/kernel-probe/README.md: the three modes gave identical register results."""
    t = context.protected_probes()
    assert len(t) >= 3 and (t["differing"] == 0).all() and t["same_list"].all()
    assert set(t["vm_types"]) == {"default"}       # no protected VM was probed


def test_vendor_calls_gate_exactly_the_histories_vendor_services():
    linux = hcsim.load("linux")
    t = context.vendor_calls(linux)
    gated = t[t["bit"] >= 0]
    assert set(gated["service"]) == {s.name for s in linux.services if s.space == "vendor-hyp"}
    assert (gated["function"] == [0, 1, 64, 65]).all()
    assert set(t[t["answered_by"] == "pKVM (EL2)"]["bit"]) == {-1}
    none = context.vendor_calls(make(NEW_REGISTER.format(registers_from="r0")))
    # PTP is vendor function 0 in that history
    assert list(none[none["bit"] >= 0]["function"]) == [0]


# -- the SMCCC filter -------------------------------------------------------------

def test_filter_reach_counts_every_pair_and_fixes_only_gains(linux):
    t = context.filter_reach(linux, since=None)
    n = len(linux.releases)
    assert t["pairs"].sum() == n * (n - 1)
    fixing = t[(t["filter_fixes"] > 0) | (t["bitmap_fixes"] > 0)]
    assert set(fixing["before"]) <= {"gained"}
    assert (t["filter_fixes"] <= t["bitmap_fixes"]).all()
    assert (t[t["before"] == "mixed"]["after_filter"] == "lost").all()
    gains = t.attrs["gained"]       # every gained pair gains at least one service
    assert max(gains.values()) <= t[t["before"] == "gained"]["pairs"].sum() <= sum(gains.values())


def test_the_filter_exists_only_from_its_release():
    h = make(NEW_REGISTER.format(registers_from="r1"))   # r0 -> r1 gains PV_LOCK too
    early = context.filter_reach(h, "upstream", "qemu", since=None, filter_from="r1")
    late = context.filter_reach(h, "upstream", "qemu", since=None, filter_from="r2")
    gained = lambda t: int(t[t["before"] == "gained"]["filter_fixes"].sum())  # noqa: E731
    assert gained(early) == 3 and gained(late) == 2   # r0->r1, r0->r2, r1->r2; r1 too early


def test_filter_discovery_follows_the_function_ids(linux):
    t = context.filter_discovery(linux).set_index("service")
    assert not t.loc["PV_TIME", "filterable"]          # SMCCC_ARCH_FEATURES: OEN 0
    assert t.loc["TRNG_V1_0", "like_a_bit"]
    assert "PTP" in t.loc["FUNC_FEAT", "also_hides"].split(",")
    assert not t.loc["PTP", "like_a_bit"]
    assert t.loc["PTP", "also_hides"] == "FUNC_FEAT"        # DISCOVER_IMPL_*: not known


# -- several vCPUs and resets ---------------------------------------------------------

@pytest.mark.parametrize("vmm,size", [("qemu", 16), ("firecracker", 16), ("cloud-hypervisor", 48)])
def test_per_vm_cost_is_the_per_vm_registers_times_the_extra_vcpus(linux, vmm, size):
    t = context.per_vm_cost(linux, "upstream", vmm, "v6.16", vcpus=(1, 3))
    assert t.loc[0, "redundant_bytes"] == 0
    k = t.loc[1, "per_vm_registers"]
    assert k == 5                    # four bitmaps and PSCI_VERSION on v6.16
    assert t.loc[1, "redundant_bytes"] == 2 * k * size
    assert t.loc[1, "redundant_ioctls"] == 2 * 2 * k
    assert t.loc[1, "list_bytes"] == 3 * t.loc[0, "list_bytes"]
    cost = hcsim.cost(linux, "upstream", vmm, vcpus=3)[linux.index("v6.16")]
    assert t.loc[1, "hypercall_bytes"] == cost.bytes_per_vm


def test_crosvm_saves_no_bitmap_and_only_psci_version_is_per_vm(linux):
    t = context.per_vm_cost(linux, "upstream", "crosvm", "v6.16", vcpus=(2,))
    assert t.loc[0, "per_vm_registers"] == 1


def test_vcpu_count_does_not_change_outcomes(four):
    r = context.vcpu_invariance(four, "invalidate-on-write", "firecracker", vcpus=3, since=None)
    assert r == {"pairs": 16, "changed": 0}


def test_cross_vcpu_probes_group_answers(tmp_path):
    recs = [{"t": "set", "vm": "C", "phase": "post_run_vcpu0", "test": "different",
             "id": "0x6030000000160000", "val": "0x1", "ret": -1, "errno": "EBUSY"},
            {"t": "set", "vm": "C", "phase": "post_run_vcpu0", "test": "different",
             "id": "0x6030000000160001", "val": "0x1", "ret": -1, "errno": "EBUSY"},
            {"t": "set", "vm": "C", "phase": "pre_run", "test": "different",
             "id": "0x6030000000160001", "val": "0x1", "ret": 0, "errno": ""}]
    (tmp_path / "9.9.9-arm64.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    t = context.cross_vcpu_probes(tmp_path)
    assert t.to_dict("records") == [{"kernel": "9.9.9-arm64", "test": "different",
                                     "answer": "EBUSY", "writes": 2}]


@pytest.mark.parametrize("strategy", ["upstream", "invalidate-on-write", "raz-wi"])
def test_reset_writeback(linux, strategy):
    fresh = context.reset_writeback(linux, strategy, "v6.16")
    assert fresh["error"] == "" and not fresh["undone"]
    assert "PTP" not in fresh["view_before"]
    stale_run = context.reset_writeback(linux, strategy, "v6.16", stale=True)
    assert stale_run["error"].startswith("EBUSY") and not stale_run["undone"]
    stale = context.reset_writeback(linux, strategy, "v6.16", stale=True, after_run=False)
    assert stale["error"] == "" and stale["undone"] == {"PTP"}


def test_a_reset_before_the_restore_defeats_invalidate_on_write():
    h = make(NEW_REGISTER.format(registers_from="r0"))
    t = context.reset_before_restore(h, "invalidate-on-write", "firecracker", since=None)
    assert t.attrs["pairs"] == 9
    assert t.to_dict("records") == [{"without": "preserved", "with_reset": "gained",
                                     "pairs": 2}]      # r0->r2 and r1->r2 gain PTP
    assert context.reset_before_restore(h, "upstream", "firecracker", since=None).empty
    assert context.reset_before_restore(h, "invalidate-on-write", "qemu", since=None).empty


# -- the QEMU series ---------------------------------------------------------------------

def test_series_effect_of_a_policy_on_itself_is_empty(linux_whole):
    assert context.series_effect(linux_whole, before="qemu", after="qemu").empty


def test_the_series_only_turns_refusals_into_preserved(linux_whole):
    t = context.series_effect(linux_whole)
    assert set(t["before"]) == {"refused"} and set(t["after"]) == {"preserved"}
    assert set(t["blame"]) <= {"hypercall", "other", "both"}


def test_tolerances_drop_bmap_2_only_while_it_is_zero(linux_whole):
    zero = hcsim.migrate(linux_whole, "upstream", context.QEMU_TOLERANCES, "v6.15", "v6.14")
    on = hcsim.Setting(on=frozenset({"DISCOVER_IMPL_VER"}))
    set_ = hcsim.migrate(linux_whole, "upstream", context.QEMU_TOLERANCES, "v6.15", "v6.14",
                         on)
    assert zero.outcome == "preserved"
    assert set_.outcome == "refused" and set_.cause.name.endswith("VENDOR_HYP_BMAP_2")


# -- ID registers -----------------------------------------------------------------------------

def sysreg(op0, op1, crn, crm, op2):
    return 0x6030000000130000 | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2


@pytest.mark.parametrize("enc,inside", [
    ((3, 0, 0, 4, 0), True),     # ID_AA64PFR0_EL1
    ((3, 1, 0, 0, 1), True),     # CLIDR_EL1 (op1 1)
    ((3, 3, 0, 0, 7), True),     # DCZID_EL0 (op1 3)
    ((3, 2, 0, 0, 0), False),    # CSSELR_EL1: op1 2 is outside
    ((3, 0, 2, 0, 3), False),    # TCR2_EL1
    ((2, 0, 0, 0, 0), False),    # op0 2
])
def test_is_feature_id(enc, inside):
    assert context.is_feature_id(sysreg(*enc)) is inside


def test_is_feature_id_needs_class_0x13_u64():
    assert not context.is_feature_id(0x6030000000140000)
    assert not context.is_feature_id(sysreg(3, 0, 0, 4, 0) & ~(0xF << 52) | 2 << 52)


def test_list_drift_counts_the_symmetric_difference(linux_whole):
    rels = ["v6.12", "v6.13", "v6.15"]
    t = context.list_drift(linux_whole, releases=rels)
    lists = {r: set(hcsim.registers(linux_whole, "upstream", r)) for r in rels}
    total = sum(len(lists[b] ^ lists[a]) for a, b in zip(rels, rels[1:]))
    assert t[list(context.KINDS)].to_numpy().sum() == total
    dropped = t[(t["release"] == "v6.13") & (t["change"] == "dropped")].iloc[0]
    assert dropped["other"] == 3 and dropped["feature-id"] == 0     # TCR2, PIRE0, PIR


def test_bitmap_masks_read_the_bit_scan(tmp_path):
    rec = {"t": "bitmap_bitscan", "vm": "A", "id": "0x6030000000160003", "default": "0x0",
           "extra_bits_accepted": "0x3", "extra_bits_rejected": "0xfffffffffffffffc",
           "reject_errnos": "EINVAL"}
    (tmp_path / "9.9.9-arm64.jsonl").write_text(json.dumps(rec) + "\n")
    (tmp_path / "9.9.9-arm64.pmu.jsonl").write_text(json.dumps(rec) + "\n")   # a variant
    t = context.bitmap_masks(tmp_path)
    assert len(t) == 1
    row = t.iloc[0]
    assert (row["reset"], row["writable"], row["reset_is_mask"], row["scan_sets"]) == \
        ("0x0", "0x3", False, 64)
