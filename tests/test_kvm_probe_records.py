"""Every data/kernel-probe/*.jsonl file follows the kernel-probe record format.

The validator lives in tools/kvm-probe/records.py (the probe's own tool
directory, loaded by path because "kvm-probe" is not an importable name).
data/kernel-probe holds copies of the shared real-kernel files and our own
probe's output; broken records must be rejected.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "kernel-probe"


def _load_validator():
    path = REPO / "tools" / "kvm-probe" / "records.py"
    spec = importlib.util.spec_from_file_location("kvm_probe_records", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


records = _load_validator()

DATA_FILES = sorted(DATA.glob("*.jsonl"))


def test_there_are_probe_files():
    assert DATA_FILES, f"no *.jsonl in {DATA}"


@pytest.mark.parametrize("path", DATA_FILES, ids=[p.name for p in DATA_FILES])
def test_data_file_is_valid(path):
    assert records.validate_file(path) == []


@pytest.mark.parametrize("path", DATA_FILES, ids=[p.name for p in DATA_FILES])
def test_data_file_name_matches_release(path):
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    name = path.name[: -len(".jsonl")]
    assert name == first["release"] or name.startswith(first["release"] + ".")


# ---- the validator must reject broken files --------------------------------

GOOD = [
    {"t": "start", "release": "6.12.117+deb13-arm64", "version": "#1 SMP Debian", "machine": "aarch64"},
    {"t": "cmdline", "cmdline": "console=ttyAMA0 rdinit=/init panic=-1 kvm-arm.mode=nvhe "},
    {"t": "open_kvm", "ret": 0, "errno": ""},
    {"t": "api_version", "val": 12},
    {"t": "caps", "caps": {"ONE_REG": 1, "ARM_MTE": 0}},
    {"t": "create_vm", "vm": "A", "ret": 0, "errno": ""},
    {"t": "create_vcpu", "vm": "A", "idx": 0, "ret": 0, "errno": ""},
    {"t": "preferred_target", "vm": "A", "ret": 0, "errno": "", "target": 5},
    {"t": "vcpu_init", "vm": "A", "idx": 0, "psci_0_2": 1, "features0": "0x4", "ret": 0, "errno": ""},
    {"t": "reg_list_probe", "vm": "A", "ret": -1, "errno": "E2BIG", "n": 3},
    {"t": "reg_list", "vm": "A", "ret": 0, "total": 3, "by_coproc": {"0x0010": 1, "0x0014": 1, "0x0016": 1}},
    {"t": "reg_list_chunk", "vm": "A", "start": 0,
     "ids": ["0x6030000000100000", "0x6030000000140000", "0x6030000000160000"]},
    {"t": "fw_first_index", "vm": "A", "index": 1},
    {"t": "fw_reg_ids", "vm": "A", "count": 2, "ids": ["0x6030000000140000", "0x6030000000160000"]},
    {"t": "get", "vm": "A", "phase": "pre_run", "test": "default", "id": "0x6030000000160000",
     "val": "0x1", "ret": 0, "errno": ""},
    {"t": "set", "vm": "A", "phase": "pre_run", "test": "bitmap_write_zero", "id": "0x6030000000160000",
     "val": "0x0", "ret": 0, "errno": "", "readback": "0x0", "readback_errno": ""},
    {"t": "set", "vm": "A", "phase": "pre_run", "test": "restore", "id": "0x6030000000160000",
     "val": "0x1", "ret": 0, "errno": "", "readback": "0x1", "readback_errno": ""},
    {"t": "bitmap_bitscan", "vm": "A", "id": "0x6030000000160000", "default": "0x1",
     "extra_bits_accepted": "0x0", "extra_bits_rejected": "0xfffffffffffffffe", "reject_errnos": "EINVAL"},
    {"t": "get", "vm": "A", "phase": "pre_run", "test": "wrong_size_get", "id": "0x6020000000160000",
     "ret": -1, "errno": "ENOENT"},
    {"t": "set", "vm": "A", "phase": "pre_run", "test": "wrong_size_set", "id": "0x6020000000160000",
     "val": "0x0", "ret": -1, "errno": "ENOENT"},
    {"t": "badaddr", "vm": "A", "id": "0x6030000000140000", "get_ret": -1, "get_errno": "EFAULT",
     "set_ret": -1, "set_errno": "EFAULT"},
    {"t": "memslot", "vm": "A", "ret": 0, "errno": ""},
    {"t": "run", "vm": "A", "label": "novgic", "ret": 0, "errno": "", "exit_reason": 6,
     "mmio_addr": "0x1000", "mmio_is_write": 1, "mmio_len": 8},
    {"t": "vcpu_reinit", "vm": "A", "ret": 0, "errno": ""},
    {"t": "run", "vm": "U", "label": "uninit_vcpu", "ret": -1, "errno": "ENOEXEC"},
    {"t": "done"},
]


def _lines(recs):
    return [json.dumps(r, separators=(",", ":")) for r in recs]


def _replace(i, **changes):
    recs = [dict(r) for r in GOOD]
    for k, v in changes.items():
        if v is _DROP:
            del recs[i][k]
        else:
            recs[i][k] = v
    return _lines(recs)


_DROP = object()
IDX: dict[str, int] = {}
for _i, _r in enumerate(GOOD):  # first record of each type/test
    IDX.setdefault(_r["t"] + ("/" + _r["test"] if "test" in _r else ""), _i)


def test_good_sample_is_valid():
    assert records.validate_lines(_lines(GOOD)) == []


BROKEN = {
    "not_json": _lines(GOOD)[:5] + ['{"t":"get", "vm": "A"'] + _lines(GOOD)[5:],
    "no_t": _replace(IDX["memslot"], t=_DROP),
    "unknown_type": _replace(IDX["memslot"], t="memslott"),
    "no_done_last": _lines(GOOD)[:-1],
    "record_after_done": _lines(GOOD) + _lines(GOOD[5:6]),
    "set_without_readback": _replace(IDX["set/bitmap_write_zero"], readback=_DROP),
    "set_without_readback_errno": _replace(IDX["set/restore"], readback_errno=_DROP),
    "get_val_not_hex": _replace(IDX["get/default"], val="1"),
    "get_val_decimal_int": _replace(IDX["get/default"], val=1),
    "get_without_val": _replace(IDX["get/default"], val=_DROP),
    "get_missing_phase": _replace(IDX["get/default"], phase=_DROP),
    "unknown_phase": _replace(IDX["get/default"], phase="later"),
    "unknown_vm": _replace(IDX["get/default"], vm="Z"),
    "id_not_16_digits": _replace(IDX["get/default"], id="0x160000"),
    "ret_and_errno_disagree": _replace(IDX["get/default"], ret=-1),
    "errno_not_a_name": _replace(IDX["badaddr"], get_errno="-14"),
    "fw_ids_wrong_class": _replace(IDX["fw_reg_ids"], ids=["0x6030000000140000", "0x603000000013c000"]),
    "fw_ids_count_mismatch": _replace(IDX["fw_reg_ids"], count=3),
    "fw_first_index_wrong": _replace(IDX["fw_first_index"], index=0),
    "chunk_gap": _replace(IDX["reg_list_chunk"], start=1),
    "by_coproc_total_mismatch": _replace(IDX["reg_list"], total=4),
    "bitscan_not_hex": _replace(IDX["bitmap_bitscan"], extra_bits_rejected="all"),
    "bitmap_set_ok_but_not_stored": _replace(IDX["set/bitmap_write_zero"], readback="0x1"),
    "mmio_exit_without_addr": _replace(IDX["run"], mmio_addr=_DROP),
    "unknown_field": _replace(IDX["memslot"], slot=0),
    "empty_line": _lines(GOOD)[:3] + [""] + _lines(GOOD)[3:],
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_records_are_rejected(name):
    assert records.validate_lines(BROKEN[name]) != []


def test_broken_file_on_disk_is_rejected(tmp_path):
    p = tmp_path / "6.12.117+deb13-arm64.jsonl"
    p.write_text("\n".join(_replace(IDX["set/restore"], readback=_DROP)) + "\n", encoding="utf-8")
    errs = records.validate_file(p)
    assert any("readback" in e for e in errs)
