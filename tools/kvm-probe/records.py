"""Validator for kernel-probe record files (``<release>[.<variant>].jsonl``).

The format is the one of the shared real-kernel probe results and of
``kvm-probe.c`` beside this file (see README.md here). ``validate_lines``
returns a list of problems (empty for a valid file); ``validate_file`` reads a
file first. Run as a script to check files::

    python3 tools/kvm-probe/records.py data/kernel-probe/*.jsonl
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HEX = re.compile(r"^0x[0-9a-f]+$")
REG_ID = re.compile(r"^0x[0-9a-f]{16}$")
ERRNO = re.compile(r"^E[A-Z0-9]+$")
COPROC_KEY = re.compile(r"^0x[0-9a-f]{4}$")

VMS = {"A", "I", "U", "N", "C", "P"}  # P: vCPU with a PMU (run-probe.sh --pmu)
PHASES = {
    "pre_run",
    "post_run",
    "post_run_reinit",
    "post_run_vcpu0",
    "after_immediate_exit_run",
    "after_failed_run_of_uninit_vcpu",
}
CLASS_FW = 0x14
CLASS_FW_BMAP = 0x16
KVM_EXIT_MMIO = 6
# KVM_ARM_VCPU_INIT features[0] bits (uapi asm/kvm.h)
PSCI_0_2_BIT = 1 << 2  # KVM_ARM_VCPU_PSCI_0_2
PMU_V3_BIT = 1 << 3  # KVM_ARM_VCPU_PMU_V3

# field kinds: str, int, hex (value), regid (64-bit register id), errno
# ("" or a name), ret (0 or -1), vm, phase, bool01, dict, list
RECORDS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    # type: (required fields, optional fields)
    "start": ({"release": "str", "version": "str", "machine": "str"}, {}),
    "cmdline": ({"cmdline": "str"}, {}),
    "open_kvm": ({"ret": "ret", "errno": "errno"}, {}),
    "api_version": ({"val": "int"}, {}),
    "caps": ({"caps": "dict"}, {}),
    "create_vm": ({"vm": "vm", "ret": "ret", "errno": "errno"}, {}),
    "create_vcpu": ({"vm": "vm", "idx": "int", "ret": "ret", "errno": "errno"}, {}),
    "preferred_target": ({"vm": "vm", "ret": "ret", "errno": "errno", "target": "int"}, {}),
    "vcpu_init": (
        {"vm": "vm", "idx": "int", "psci_0_2": "bool01", "features0": "hex",
         "ret": "ret", "errno": "errno"},
        {},
    ),
    "vcpu_reinit": ({"vm": "vm", "ret": "ret", "errno": "errno"}, {}),
    "reg_list_probe": ({"vm": "vm", "ret": "ret", "errno": "errno", "n": "int"}, {}),
    "reg_list": ({"vm": "vm", "ret": "ret", "total": "int", "by_coproc": "dict"},
                 {"errno": "errno"}),
    "reg_list_chunk": ({"vm": "vm", "start": "int", "ids": "list"}, {}),
    "fw_first_index": ({"vm": "vm", "index": "int"}, {}),
    "fw_reg_ids": ({"vm": "vm", "count": "int", "ids": "list"}, {}),
    "get": (
        {"vm": "vm", "phase": "phase", "test": "str", "id": "regid",
         "ret": "ret", "errno": "errno"},
        {"val": "hex"},
    ),
    "set": (
        {"vm": "vm", "phase": "phase", "test": "str", "id": "regid", "val": "hex",
         "ret": "ret", "errno": "errno"},
        {"readback": "hex", "readback_errno": "errno"},
    ),
    "bitmap_bitscan": (
        {"vm": "vm", "id": "regid", "default": "hex", "extra_bits_accepted": "hex",
         "extra_bits_rejected": "hex", "reject_errnos": "str"},
        {},
    ),
    "badaddr": (
        {"vm": "vm", "id": "regid", "get_ret": "ret", "get_errno": "errno",
         "set_ret": "ret", "set_errno": "errno"},
        {},
    ),
    "memslot": ({"vm": "vm", "ret": "ret", "errno": "errno"}, {}),
    "run": (
        {"vm": "vm", "label": "str", "ret": "ret", "errno": "errno"},
        {"exit_reason": "int", "mmio_addr": "hex", "mmio_is_write": "bool01",
         "mmio_len": "int"},
    ),
    "done": ({}, {}),
}


def reg_class(reg_id: str) -> int:
    return (int(reg_id, 16) >> 16) & 0xFFF


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_kind(kind: str, v) -> str | None:
    """None if v fits kind, else what is wrong."""
    if kind == "str":
        return None if isinstance(v, str) else "not a string"
    if kind == "int":
        return None if _is_int(v) else "not an integer"
    if kind == "ret":
        return None if _is_int(v) and v in (0, -1) else "ret not 0 or -1"
    if kind == "bool01":
        return None if _is_int(v) and v in (0, 1) else "not 0 or 1"
    if kind == "hex":
        return None if isinstance(v, str) and HEX.match(v) else "not a 0x hex string"
    if kind == "regid":
        return None if isinstance(v, str) and REG_ID.match(v) else "not a 16-digit 0x register id"
    if kind == "errno":
        return None if isinstance(v, str) and (v == "" or ERRNO.match(v)) else "not an errno name"
    if kind == "vm":
        return None if v in VMS else "unknown vm"
    if kind == "phase":
        return None if v in PHASES else "unknown phase"
    if kind == "dict":
        return None if isinstance(v, dict) else "not an object"
    if kind == "list":
        return None if isinstance(v, list) else "not a list"
    raise ValueError(kind)


def _check_ret_errno(rec: dict, ret_key: str, errno_key: str, where: str, errs: list[str]):
    ret, err = rec.get(ret_key), rec.get(errno_key)
    if ret == 0 and err != "":
        errs.append(f"{where}: {ret_key} 0 but {errno_key} {err!r}")
    if ret == -1 and err == "":
        errs.append(f"{where}: {ret_key} -1 but no {errno_key}")


def validate_record(rec, where: str) -> list[str]:
    """Problems of one decoded record (structure and field formats)."""
    errs: list[str] = []
    if not isinstance(rec, dict):
        return [f"{where}: not a JSON object"]
    t = rec.get("t")
    if not isinstance(t, str):
        return [f"{where}: no record type 't'"]
    if t not in RECORDS:
        return [f"{where}: unknown record type {t!r}"]
    required, optional = RECORDS[t]
    for k, kind in required.items():
        if k not in rec:
            errs.append(f"{where}: {t} without field {k!r}")
            continue
        bad = _check_kind(kind, rec[k])
        if bad:
            errs.append(f"{where}: {t}.{k} = {rec[k]!r}: {bad}")
    for k, v in rec.items():
        if k == "t" or k in required:
            continue
        if k not in optional:
            errs.append(f"{where}: {t} has unknown field {k!r}")
            continue
        bad = _check_kind(optional[k], v)
        if bad:
            errs.append(f"{where}: {t}.{k} = {v!r}: {bad}")
    if errs:
        return errs

    if "ret" in required and "errno" in rec:
        _check_ret_errno(rec, "ret", "errno", where, errs)
    if t == "badaddr":
        _check_ret_errno(rec, "get_ret", "get_errno", where, errs)
        _check_ret_errno(rec, "set_ret", "set_errno", where, errs)
    if t == "caps":
        for name, v in rec["caps"].items():
            if not _is_int(v):
                errs.append(f"{where}: caps.{name} not an integer")
    if t == "reg_list":
        if rec["ret"] == -1 and not rec.get("errno"):
            errs.append(f"{where}: reg_list failed without errno")
        total = 0
        for key, n in rec["by_coproc"].items():
            if not COPROC_KEY.match(key) or not _is_int(n) or n < 0:
                errs.append(f"{where}: by_coproc entry {key!r}: {n!r}")
            else:
                total += n
        if rec["ret"] == 0 and total != rec["total"]:
            errs.append(f"{where}: by_coproc adds up to {total}, total is {rec['total']}")
    if t in ("reg_list_chunk", "fw_reg_ids"):
        for i in rec["ids"]:
            if not (isinstance(i, str) and REG_ID.match(i)):
                errs.append(f"{where}: {t} id {i!r} is not a 16-digit 0x register id")
    if t == "fw_reg_ids" and not errs:
        if rec["count"] != len(rec["ids"]):
            errs.append(f"{where}: fw_reg_ids count {rec['count']} but {len(rec['ids'])} ids")
        for i in rec["ids"]:
            if reg_class(i) not in (CLASS_FW, CLASS_FW_BMAP):
                errs.append(f"{where}: fw_reg_ids has {i}, not class 0x14/0x16")
    if t == "vcpu_init" and not errs:
        f0 = int(rec["features0"], 16)
        if bool(f0 & PSCI_0_2_BIT) != bool(rec["psci_0_2"]):
            errs.append(f"{where}: psci_0_2 {rec['psci_0_2']} but features0 {rec['features0']}")
        if rec["vm"] == "P" and not f0 & PMU_V3_BIT:
            errs.append(f"{where}: VM P vCPU without the PMUv3 feature (features0 {rec['features0']})")
    if t == "get":
        wrong_size = rec["test"].startswith("wrong_size")
        if "val" not in rec and not (wrong_size and rec["ret"] == -1):
            errs.append(f"{where}: get without val")
    if t == "set":
        if rec["test"].startswith("wrong_size"):
            pass  # wrong-size SETs have no readback (no U64 GET to follow)
        else:
            for k in ("readback", "readback_errno"):
                if k not in rec:
                    errs.append(f"{where}: set without {k}")
            if (
                not errs
                and rec["ret"] == 0
                and rec["readback_errno"] == ""
                and reg_class(rec["id"]) == CLASS_FW_BMAP
                and rec["readback"] != rec["val"]
            ):
                errs.append(f"{where}: bitmap SET of {rec['val']} succeeded but reads back {rec['readback']}")
    if t == "bitmap_bitscan":
        if reg_class(rec["id"]) != CLASS_FW_BMAP:
            errs.append(f"{where}: bitmap_bitscan of {rec['id']}, not class 0x16")
        acc, rej = int(rec["extra_bits_accepted"], 16), int(rec["extra_bits_rejected"], 16)
        d = int(rec["default"], 16)
        if acc & rej or (acc | rej) & d:
            errs.append(f"{where}: bitscan accepted/rejected/default bits overlap")
        if rej and not rec["reject_errnos"]:
            errs.append(f"{where}: bits rejected without reject_errnos")
        for e in filter(None, rec["reject_errnos"].split(",")):
            if not ERRNO.match(e):
                errs.append(f"{where}: reject_errnos has {e!r}")
    if t == "run" and rec.get("exit_reason") == KVM_EXIT_MMIO and rec["ret"] == 0:
        for k in ("mmio_addr", "mmio_is_write", "mmio_len"):
            if k not in rec:
                errs.append(f"{where}: MMIO exit without {k}")
    return errs


def validate_lines(lines, name: str = "<records>") -> list[str]:
    """Problems of a whole record file given as lines of text."""
    errs: list[str] = []
    recs: list[tuple[int, dict]] = []
    for n, text in enumerate(lines, 1):
        where = f"{name}:{n}"
        text = text.rstrip("\n")
        if not text.strip():
            errs.append(f"{where}: empty line")
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            errs.append(f"{where}: not JSON ({e.msg})")
            continue
        e = validate_record(rec, where)
        errs.extend(e)
        if not e:
            recs.append((n, rec))
    if not recs and not errs:
        return [f"{name}: no records"]
    if errs:
        return errs

    types = [r["t"] for _, r in recs]
    if types[0] != "start":
        errs.append(f"{name}: first record is {types[0]!r}, not 'start'")
    if types[-1] != "done":
        errs.append(f"{name}: last record is {types[-1]!r}, not 'done'")
    if types.count("done") != 1:
        errs.append(f"{name}: {types.count('done')} 'done' records")
    if types.count("start") != 1:
        errs.append(f"{name}: {types.count('start')} 'start' records")

    # per VM: the register list chunks cover the list in order, and the
    # firmware ids and first index agree with it
    lists: dict[str, dict] = {}
    for n, r in recs:
        vm = r.get("vm")
        if r["t"] == "reg_list":
            lists[vm] = {"total": r["total"], "ids": [], "line": n}
        elif r["t"] == "reg_list_chunk":
            cur = lists.get(vm)
            if cur is None:
                errs.append(f"{name}:{n}: reg_list_chunk before reg_list of VM {vm}")
                continue
            if r["start"] != len(cur["ids"]):
                errs.append(f"{name}:{n}: chunk starts at {r['start']}, expected {len(cur['ids'])}")
            cur["ids"].extend(r["ids"])
        elif r["t"] in ("fw_first_index", "fw_reg_ids"):
            cur = lists.get(vm)
            if cur is None:
                errs.append(f"{name}:{n}: {r['t']} before reg_list of VM {vm}")
                continue
            ids = cur["ids"]
            if len(ids) != cur["total"]:
                errs.append(f"{name}:{n}: chunks list {len(ids)} ids, reg_list total {cur['total']}")
                continue
            fw = [i for i in ids if reg_class(i) in (CLASS_FW, CLASS_FW_BMAP)]
            if r["t"] == "fw_reg_ids" and r["ids"] != fw:
                errs.append(f"{name}:{n}: fw_reg_ids differ from the class 0x14/0x16 ids of the list")
            if r["t"] == "fw_first_index":
                first = ids.index(fw[0]) if fw else -1
                if r["index"] != first:
                    errs.append(f"{name}:{n}: fw_first_index {r['index']}, list says {first}")
    return errs


def validate_file(path) -> list[str]:
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        return validate_lines(f.read().splitlines(), path.name)


def main(argv: list[str]) -> int:
    bad = 0
    for p in argv:
        errs = validate_file(p)
        for e in errs:
            print(e)
        print(f"{p}: {'OK' if not errs else f'{len(errs)} problem(s)'}")
        bad += bool(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
