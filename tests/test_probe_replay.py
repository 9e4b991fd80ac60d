"""The model against real kernels: probe replay, and real migration events.

Ground truth is ``data/kernel-probe/`` (Debian kernels booted under QEMU,
their answers recorded by a probe).  Every file there must replay with no
mismatch at its own kernel and CPU model; a record altered by hand must be
reported as exactly one mismatch, in the kernel's words.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcsim.analyses import probe
from hcsim.evaluation.spec import boot, migrate
from hcsim.frontends import cli
from hcsim.model.history import data_path
from hcsim.model.kvm import KVM_MAX_VCPUS, Kernel, KvmError
from hcsim.model.regs import feat_reg, fw_reg, short_name
from hcsim.model.strategies import parse
from hcsim.model.vmm import Refused
from hcsim.model.vmm import parse as vmm

PROBES = sorted((data_path("kernel-probe")).glob("*.jsonl"))
DEBIAN_6_1 = data_path("kernel-probe") / "6.1.0-56-arm64.jsonl"
DEBIAN_6_16 = data_path("kernel-probe") / "6.16.12+deb13-arm64.jsonl"
UPSTREAM = parse("upstream")

#: Record types about the model; everything else is skipped (README.md).
COMPARED = {"create_vm", "create_vcpu", "vcpu_init", "vcpu_reinit", "reg_list",
            "fw_reg_ids", "get", "set", "bitmap_bitscan", "badaddr", "run"}


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- every shipped probe file --------------------------------------------------

def test_the_shared_probe_files_are_shipped():
    names = {p.name for p in PROBES}
    for kernel in ("5.10.0-32-arm64", "6.1.0-56-arm64", "6.16.12+deb13-arm64",
                   "7.3.4+deb13-arm64"):
        assert f"{kernel}.jsonl" in names
    assert "7.3.4+deb13-arm64.cpu-neoverse-n1.jsonl" in names


@pytest.mark.parametrize("path", PROBES, ids=[p.name for p in PROBES])
def test_probe_file_replays_without_mismatch(linux, path):
    records = lines_of(path)
    result = probe.replay(path, linux)       # kernel from `start`, CPU from the name
    assert result.kernel == records[0]["release"]
    assert result.total == sum(r["t"] in COMPARED for r in records)
    assert result.mismatches == [], "\n".join(map(str, result.mismatches))


def test_cpu_model_comes_from_the_file_name():
    assert probe.cpu_of("7.3.4+deb13-arm64.cpu-cortex-a57.jsonl") == "cortex-a57"
    assert probe.cpu_of("7.3.4+deb13-arm64.protected.jsonl") == "max"
    assert probe.cpu_of("6.12.117+deb13-arm64.jsonl") == "max"


# -- sensitivity: altered records ----------------------------------------------

def find(records: list[dict], **fields) -> int:
    """Index of the first record with these fields."""
    return next(i for i, r in enumerate(records)
                if all(r.get(k) == v for k, v in fields.items()))


def test_a_flipped_readback_is_exactly_one_mismatch(linux, tmp_path):
    records = lines_of(DEBIAN_6_1)
    i = find(records, t="set", test="bitmap_write_zero", id="0x6030000000160000")
    assert records[i]["readback"] == "0x0"
    records[i]["readback"] = "0x1"
    result = probe.replay(write(tmp_path / "6.1.0-56-arm64.jsonl", records), linux)
    assert [str(m) for m in result.mismatches] == [
        f"line {i + 1} set STD_BMAP 0x0 (bitmap_write_zero): readback expected 0x1, read 0x0"]
    assert result.matched == result.total - 1


def test_a_flipped_errno_is_reported_in_kernel_words(linux, tmp_path):
    records = lines_of(DEBIAN_6_1)
    i = find(records, t="set", test="post_run_different", id="0x6030000000160001")
    assert records[i]["errno"] == "EBUSY"
    records[i].update(ret=0, errno="")
    result = probe.replay(write(tmp_path / "6.1.0-56-arm64.jsonl", records), linux)
    assert [str(m) for m in result.mismatches] == [
        f"line {i + 1} set STD_HYP_BMAP 0x0 (post_run_different): "
        "expected ret 0, read EBUSY"]


def test_a_changed_reset_value_names_the_register(linux, tmp_path):
    records = lines_of(DEBIAN_6_1)
    i = find(records, t="get", vm="A", test="default", id="0x6030000000160002")
    records[i]["val"] = "0x7"
    result = probe.replay(write(tmp_path / "6.1.0-56-arm64.jsonl", records), linux)
    assert [str(m) for m in result.mismatches] == [
        f"line {i + 1} get VENDOR_HYP_BMAP (default): expected 0x7, read 0x3"]


def test_unrecorded_restore_before_after_restore_is_replayed(linux, tmp_path):
    # Our probe records the restoring SET (test `restore`); the shared probe
    # did not.  Without those records the replay must still match.
    path = data_path("kernel-probe") / "6.12.117+deb13-arm64.jsonl"
    records = lines_of(path)
    kept = [r for r in records if r.get("test") != "restore"]
    assert len(records) - len(kept) == 3
    result = probe.replay(write(tmp_path / path.name, kept), linux)
    assert result.mismatches == []
    assert result.total == probe.replay(path, linux).total - 3


def test_after_restore_still_compares_the_value(linux, tmp_path):
    records = lines_of(DEBIAN_6_1)
    i = find(records, t="get", test="after_restore", id="0x6030000000160000")
    records[i]["val"] = "0x0"           # as if the probe had not restored
    result = probe.replay(write(tmp_path / "6.1.0-56-arm64.jsonl", records), linux)
    assert [m.line for m in result.mismatches] == [i + 1]


def test_mainline_v6_1_differs_from_debian_6_1_only_in_workaround_3(linux):
    # Debian 6.1.y has the e403e8538359 backport: QEMU -cpu max reads
    # WORKAROUND_3 = 0 (NOT_AVAIL); mainline v6.1 still reads 2.
    result = probe.replay(DEBIAN_6_1, linux, kernel="v6.1")
    assert result.mismatches
    assert all("SMCCC_ARCH_WORKAROUND_3" in m.call for m in result.mismatches)


def test_wrong_cpu_model_shows_in_the_workaround_registers(linux):
    result = probe.replay(DEBIAN_6_16, linux, cpu="cortex-a57")
    assert result.mismatches
    assert all("SMCCC_ARCH_WORKAROUND" in m.call for m in result.mismatches)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_any_single_altered_value_is_exactly_one_mismatch_at_its_line(linux, tmp_path_factory,
                                                                      data):
    # A GET's value and a SET's read-back are only compared, never replayed
    # into the model's state, so altering one must cost exactly that record.
    path = data.draw(st.sampled_from(PROBES), label="file")
    records = lines_of(path)
    candidates = [(i, "val" if r["t"] == "get" else "readback")
                  for i, r in enumerate(records)
                  if (r["t"] == "get" and r["ret"] == 0)
                  or (r["t"] == "set" and r.get("readback_errno") == "")]
    i, key = data.draw(st.sampled_from(candidates), label="record")
    records[i][key] = hex(int(records[i][key], 16) ^ 1 << data.draw(
        st.integers(0, 63), label="bit"))
    out = tmp_path_factory.mktemp("alt") / path.name
    result = probe.replay(write(out, records), linux)
    assert [m.line for m in result.mismatches] == [i + 1]
    assert "expected " + records[i][key] in str(result.mismatches[0])


# -- model details the probes pinned ------------------------------------------

def test_vcpus_are_created_with_the_id_userspace_chose(linux):
    # VM C of the probe: vCPU 5 first, then 0, 1, 2.
    vm = Kernel(linux, "v6.16", UPSTREAM).create_vm()
    five = vm.create_vcpu(5)
    assert [vm.create_vcpu().index, vm.create_vcpu().index] == [0, 1]
    assert [c.index for c in vm.vcpus] == [5, 0, 1]
    assert vm.vcpu_by_id(5) is five and vm.vcpu_by_id(3) is None
    with pytest.raises(KvmError) as dup:
        vm.create_vcpu(5)
    with pytest.raises(KvmError) as big:
        vm.create_vcpu(KVM_MAX_VCPUS)
    assert (dup.value.errno, big.value.errno) == (errno.EEXIST, errno.EINVAL)


@pytest.mark.parametrize("kernel,rid,expected", [
    # (probe file line: badaddr) -- set_errno
    ("5.10.0-32-arm64", feat_reg(0), errno.ENOENT),    # class 0x16 unknown on 5.10
    ("5.10.0-32-arm64", feat_reg(99), errno.ENOENT),
    ("5.10.0-32-arm64", fw_reg(99), errno.EFAULT),     # fw code copies first
    ("6.1.0-56-arm64", feat_reg(99), errno.EFAULT),
    ("6.1.0-56-arm64", feat_reg(0), errno.EFAULT),
])
def test_null_address_set_copies_first_only_in_the_firmware_code(linux, kernel, rid, expected):
    cpu = boot(Kernel(linux, kernel, UPSTREAM), 1)[0]
    with pytest.raises(KvmError) as exc:
        cpu.set_one_reg(rid, 0, bad_address=True)
    assert exc.value.errno == expected


# -- command line -----------------------------------------------------------

def test_cli_all_match_exit_0(capsys):
    code, out, err = run(capsys, "probe-replay", DEBIAN_6_16, "--history", "linux")
    first = out.splitlines()[0]
    n, m = first.split()[0].split("/")
    assert code == 0 and err == ""
    assert n == m and first.startswith(f"{n}/{m} records match")
    assert len(out.splitlines()) == 1


def test_cli_mainline_release_and_json(capsys):
    code, out, _ = run(capsys, "probe-replay", DEBIAN_6_16, "--history", "linux",
                       "--release", "v6.16", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["kernel"] == "v6.16" and doc["cpu"] == "max"
    assert doc["matched"] == doc["total"] > 0 and doc["mismatches"] == []


def test_cli_mismatch_exit_1_prints_each(capsys, tmp_path):
    records = lines_of(DEBIAN_6_1)
    i = find(records, t="set", test="bitmap_write_zero", id="0x6030000000160000")
    records[i]["readback"] = "0x1"
    path = write(tmp_path / "6.1.0-56-arm64.jsonl", records)
    code, out, _ = run(capsys, "probe-replay", path, "--history", "linux")
    total = sum(r["t"] in COMPARED for r in records)
    assert code == 1
    assert out.splitlines()[0].startswith(f"{total - 1}/{total} records match")
    assert out.splitlines()[1] == (f"line {i + 1} set STD_BMAP 0x0 (bitmap_write_zero): "
                                   "readback expected 0x1, read 0x0")


@pytest.mark.parametrize("case,argv,message", [
    ("missing file", ["nowhere.jsonl"], "no such probe file"),
    ("not JSON lines", ["{toml}"], "not a JSON object"),
    ("not a probe file", ["{nostart}"], "not a probe file"),
    ("no record type", ["{not}"], "not a probe record"),
    ("unknown release", ["{probe}", "--release", "v9.9"], "unknown release 'v9.9'"),
    ("unknown kernel", ["{unknown}"], "does not know the probed kernel"),
    ("unknown cpu", ["{probe}", "--cpu", "apple-m1"], "unknown CPU model 'apple-m1'"),
    ("unknown format", ["{probe}", "--format", "csv"], "unknown format 'csv'"),
])
def test_cli_bad_input_exit_2_one_line(capsys, tmp_path, case, argv, message):
    records = lines_of(DEBIAN_6_16)
    files = {
        "toml": data_path("linux-upstream.toml"),
        "probe": DEBIAN_6_16,
        "nostart": write(tmp_path / "nostart.jsonl", records[1:]),
        "not": write(tmp_path / "not.jsonl", [{"release": "x"}]),
        "unknown": write(tmp_path / "u.jsonl",
                         [{**records[0], "release": "9.9.9-arm64"}, *records[1:]]),
    }
    argv = [a.format(**files) for a in argv]
    code, out, err = run(capsys, "probe-replay", *argv, "--history", "linux")
    assert code == 2 and out == ""
    assert err.startswith("hcsim: error: ") and err.count("\n") == 1
    assert message in err and "Traceback" not in err


# -- real migration events on the Linux history (scalar spec) -------------------

def linux_migration(linux, src: str, dst: str, policy: str = "qemu"):
    return migrate(linux, UPSTREAM, vmm(policy), linux.index(src), linux.index(dst))


def test_v6_13_to_v6_12_refused_psci_1_3_not_implemented(linux):
    m = linux_migration(linux, "v6.13", "v6.12")
    assert m.outcome == "refused"
    assert "PSCI_VERSION" in m.detail and "EINVAL" in m.detail


def test_v5_18_to_v5_19_preserved(linux):
    assert linux_migration(linux, "v5.18", "v5.19").outcome == "preserved"


def test_v5_19_to_v5_18_refused(linux):
    # The three bitmaps are new on v5.19: QEMU's count check fails.
    assert linux_migration(linux, "v5.19", "v5.18").outcome == "refused"


def test_v6_14_to_v6_15_preserved(linux):
    assert linux_migration(linux, "v6.14", "v6.15").outcome == "preserved"


def test_v6_15_to_v6_14_refused_under_qemu_preserved_under_qemu_tolerant(linux):
    # VENDOR_HYP_BMAP_2 (v6.15, reset 0) is unknown to v6.14.
    assert linux_migration(linux, "v6.15", "v6.14", "qemu").outcome == "refused"
    assert linux_migration(linux, "v6.15", "v6.14", "qemu-tolerant").outcome == "preserved"


def test_v5_12_to_v5_11_loses_trng(linux):
    m = linux_migration(linux, "v5.12", "v5.11")
    assert (m.outcome, m.lost, m.gained) == ("lost", frozenset({"TRNG_V1_0"}), frozenset())


def test_debian_5_10_lists_workaround_3_that_mainline_v5_10_lacks(linux):
    debian = boot(Kernel(linux, "5.10.0-32-arm64", UPSTREAM), 1)[0].get_reg_list()
    mainline = boot(Kernel(linux, "v5.10", UPSTREAM), 1)[0].get_reg_list()
    assert [short_name(r) for r in sorted(set(debian) - set(mainline))] == [
        "SMCCC_ARCH_WORKAROUND_3"]
    assert set(mainline) < set(debian)


def test_debian_5_10_vm_cannot_move_to_mainline_v5_10_under_qemu(linux):
    src = boot(Kernel(linux, "5.10.0-32-arm64", UPSTREAM), 1)
    dst = boot(Kernel(linux, "v5.10", UPSTREAM), 1)
    qemu = vmm("qemu")
    with pytest.raises(Refused, match="count 4 > 3"):
        qemu.restore(dst, qemu.save(src))
