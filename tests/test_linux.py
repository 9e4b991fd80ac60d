"""The bundled Linux history through the command line."""

from __future__ import annotations

import csv
import io

import pytest

from hcsim.evaluation.measures import cost_at
from hcsim.frontends import cli
from hcsim.model.regs import is_feature
from hcsim.model.strategies import parse
from hcsim.model.vmm import parse as vmm


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def upstream_qemu_csv():
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(["matrix", "--history", "linux", "--strategy", "upstream",
                         "--vmm", "qemu", "--format", "csv"]) == 0
    return {(r["src"], r["dst"]): r for r in csv.DictReader(io.StringIO(buf.getvalue()))}


@pytest.mark.parametrize("src,dst,outcome", [
    ("v5.18", "v5.19", "preserved"),
    ("v5.19", "v5.18", "refused"),
    ("v6.14", "v6.15", "preserved"),
    ("v6.15", "v6.14", "refused"),
    ("v6.13", "v6.12", "refused"),
    ("v5.12", "v5.11", "lost"),
])
def test_linux_upstream_qemu_events(upstream_qemu_csv, src, dst, outcome):
    assert upstream_qemu_csv[(src, dst)]["outcome"] == outcome


def test_linux_lost_and_refusal_details(upstream_qemu_csv):
    assert upstream_qemu_csv[("v5.12", "v5.11")]["lost"] == "TRNG_V1_0"
    assert "PSCI_VERSION" in upstream_qemu_csv[("v6.13", "v6.12")]["detail"]
    assert "count" in upstream_qemu_csv[("v6.15", "v6.14")]["detail"]
    assert upstream_qemu_csv[("v6.15", "v6.14")]["blame"] == "hypercall"


def test_linux_qemu_tolerant_accepts_v6_15_to_v6_14(capsys):
    code, out, _ = run(capsys, "matrix", "--history", "linux", "--strategy", "upstream",
                       "--vmm", "qemu-tolerant", "--format", "csv")
    rows = {(r["src"], r["dst"]): r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and rows[("v6.15", "v6.14")]["outcome"] == "preserved"


def test_full_bitmap_feature_registers_cost_32768_bytes_per_vcpu_under_qemu(linux):
    c = cost_at(linux, parse("full-bitmap"), vmm("qemu"), linux.index("v6.15"),
                feature_only=True)
    assert (c.registers, c.bytes_per_vcpu) == (2048, 2048 * 16)


def test_full_bitmap_2048_costs_16896_bytes_per_vcpu_under_firecracker(linux):
    c = cost_at(linux, parse("full-bitmap:width=2048"), vmm("firecracker"),
                linux.index("v6.15"), feature_only=True)
    assert c.bytes_per_vcpu == 64 * (8 + 256)


def test_cost_csv_columns_and_unsupported_rows_empty(capsys):
    code, out, _ = run(capsys, "cost", "--history", "linux", "--strategy", "wide",
                       "--vmm", "qemu", "--format", "csv", "--vcpus", "4")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert list(rows[0]) == ["release", "registers", "bytes_per_vcpu", "bytes_per_vm",
                             "ioctls", "floor_bytes", "list_registers", "list_bytes_per_vcpu",
                             "list_ioctls"]
    late = rows[-1]
    assert late["registers"] == "" and late["bytes_per_vcpu"] == ""
    assert late["floor_bytes"] == "1"                 # 6 services -> 1 byte


def test_cost_upstream_counts_firmware_and_bitmaps(linux, capsys):
    code, out, _ = run(capsys, "cost", "--history", "linux", "--strategy", "upstream",
                       "--vmm", "qemu", "--format", "csv", "--vcpus", "2")
    rows = {r["release"]: r for r in csv.DictReader(io.StringIO(out))}
    # v6.15: PSCI_VERSION, WORKAROUND_1..3, four bitmaps; 16 B each, 2 vCPUs.
    assert rows["v6.15"]["registers"] == "8"
    assert rows["v6.15"]["bytes_per_vm"] == str(8 * 16 * 2)
    assert rows["v6.15"]["ioctls"] == str(2 * 8 * 2)
    assert rows["v4.16"]["registers"] == "0"
    # the whole list beside it (DESIGN.md 9): v6.15 lists 174 other registers
    assert rows["v6.15"]["list_registers"] == str(8 + 174)
    assert rows["v6.15"]["list_ioctls"] == str(2 * 182 * 2)


def test_feature_only_cost_excludes_firmware(linux):
    full = cost_at(linux, parse("upstream"), vmm("qemu"), linux.index("v6.15"))
    feat = cost_at(linux, parse("upstream"), vmm("qemu"), linux.index("v6.15"),
                   feature_only=True)
    assert full.registers - feat.registers == 4
    assert not is_feature(0x6030000000140000)


def test_compare_prints_a_72_column_scorecard(capsys):
    code, out, _ = run(capsys, "compare", "--history", "linux", "--vmm", "qemu",
                       "--strategy", "upstream", "--strategy", "raz-einval",
                       "--strategy", "raz-wi")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 72
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in ("upstream", "raz-einval", "raz-wi")}
    assert set(rows) == {"upstream", "raz-einval", "raz-wi"}
