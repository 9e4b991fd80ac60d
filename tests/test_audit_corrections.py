"""The fidelity audit's corrections (issue 11, item 7), each against the kernel.

* v4.17..v5.2 answer unknown class 0x14 ids with EINVAL (``fw_enoent_from``);
* WORKAROUND_2 on v5.3..v5.9: raw levels (UNKNOWN not mapped) and a per-vCPU
  ENABLED bit (``stores``), with per-release host profiles (``hosts`` in
  ``changes``);
* ``--host P`` on matrix/cost/compare.
"""

from __future__ import annotations

import contextlib
import errno
import io

import pytest
from conftest import make

from hcsim.errors import InputError
from hcsim.evaluation import engine
from hcsim.evaluation.spec import boot, migrate
from hcsim.frontends import cli
from hcsim.model import regs
from hcsim.model.kvm import Kernel, KvmError
from hcsim.model.strategies import parse
from hcsim.model.vmm import parse as vmm

PSCI = regs.fw_reg(0)
WA1, WA2, WA3 = (regs.fw_reg(i) for i in (1, 2, 3))
UNKNOWN_FW = regs.fw_reg(7)
PSCI_U32 = PSCI & ~(0xF << 52) | (0x2 << 52)


def vcpu(h, release, host=None):
    return boot(Kernel(h, release, parse("upstream"), host), 1)[0]


def errno_of(fn, *args, **kwargs):
    with pytest.raises(KvmError) as exc:
        fn(*args, **kwargs)
    return exc.value.errno


# -- 1. EINVAL for unknown class 0x14 ids before v5.3 -------------------------------

@pytest.mark.parametrize("release", ["v4.17", "v5.0", "v5.2"])
def test_unknown_fw_id_is_einval_on_v4_17_to_v5_2(linux, release):
    cpu = vcpu(linux, release)
    assert cpu.get_reg_list() == [PSCI]
    for rid in (UNKNOWN_FW, WA1, PSCI_U32):
        assert errno_of(cpu.get_one_reg, rid) == errno.EINVAL
        assert errno_of(cpu.set_one_reg, rid, 0) == errno.EINVAL
        # no copy_from_user before the id check: EINVAL, not EFAULT
        assert errno_of(cpu.set_one_reg, rid, 0, bad_address=True) == errno.EINVAL
    # PSCI_VERSION itself copies the value in: EFAULT
    assert errno_of(cpu.set_one_reg, PSCI, 0x10000, bad_address=True) == errno.EFAULT
    assert errno_of(cpu.set_one_reg, PSCI, 0x1) == errno.EINVAL   # a bad value
    # class 0x16 still goes to the system-register code
    assert errno_of(cpu.get_one_reg, regs.feat_reg(0)) == errno.ENOENT


@pytest.mark.parametrize("release", ["v5.3", "v6.1"])
def test_unknown_fw_id_is_enoent_from_v5_3(linux, release):
    cpu = vcpu(linux, release)
    assert errno_of(cpu.get_one_reg, UNKNOWN_FW) == errno.ENOENT
    assert errno_of(cpu.set_one_reg, UNKNOWN_FW, 0) == errno.ENOENT
    assert errno_of(cpu.set_one_reg, PSCI_U32, 0) == errno.ENOENT
    assert errno_of(cpu.set_one_reg, UNKNOWN_FW, 0, bad_address=True) == errno.EFAULT


def test_v4_16_has_no_firmware_code_so_enoent(linux):
    cpu = vcpu(linux, "v4.16")
    assert errno_of(cpu.get_one_reg, PSCI) == errno.ENOENT


def test_snapshot_writer_refusal_names_einval_on_old_abi(linux):
    up = parse("upstream")
    m = migrate(linux, up, vmm("firecracker"), linux.index("v5.3"), linux.index("v5.2"))
    assert (m.outcome, m.detail) == ("refused", "EINVAL on KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1")


def test_history_without_fw_enoent_from_keeps_enoent():
    h = make('releases = ["a", "b"]\n[[firmware]]\nname = "PSCI_VERSION"\n'
             'id = "0x6030000000140000"\nintroduced = "a"\nreset = "0x1"\n')
    assert h.fw_enoent_from == 0
    assert errno_of(vcpu(h, "a").get_one_reg, UNKNOWN_FW) == errno.ENOENT
    h2 = make('fw_enoent_from = "b"\n' + 'releases = ["a", "b"]\n[[firmware]]\n'
              'name = "PSCI_VERSION"\nid = "0x6030000000140000"\nintroduced = "a"\nreset = "0x1"\n')
    assert errno_of(vcpu(h2, "a").get_one_reg, UNKNOWN_FW) == errno.EINVAL
    assert errno_of(vcpu(h2, "b").get_one_reg, UNKNOWN_FW) == errno.ENOENT
    assert h2.since("b").fw_enoent_from == 0


# -- 2. WORKAROUND_2 on v5.3..v5.9 ------------------------------------------------------

def test_wa2_v5_9_ssbs_host_stores_enabled_per_vcpu(linux):
    k = Kernel(linux, "v5.9", parse("upstream"), "neoverse-n1")
    vm = k.create_vm()
    a, b = vm.create_vcpu().init(), vm.create_vcpu().init()
    assert a.get_one_reg(WA2) == 0x12                 # AVAIL | ENABLED at reset
    a.set_one_reg(WA2, 0x2)                           # level AVAIL, ENABLED clear
    assert a.get_one_reg(WA2) == 0x2
    assert b.get_one_reg(WA2) == 0x12                 # per vCPU
    a.set_one_reg(WA2, 0x1)                           # a lower level leaves the flag
    assert a.get_one_reg(WA2) == 0x2
    a.set_one_reg(WA2, 0x12)
    assert a.get_one_reg(WA2) == 0x12
    assert errno_of(a.set_one_reg, WA2, 0x3) == errno.EINVAL    # NOT_REQUIRED > AVAIL
    assert errno_of(a.set_one_reg, WA2, 0x11) == errno.EINVAL   # ENABLED without AVAIL
    a.set_one_reg(WA2, 0x2)
    a.init()                                          # kvm_reset_vcpu sets the flag again
    assert a.get_one_reg(WA2) == 0x12


def test_wa2_levels_are_not_mapped_before_v5_10():
    # A NOT_AVAIL host: v5.3-style raw compare rejects UNKNOWN (1); from the
    # v5.10 change it maps to NOT_AVAIL and is accepted.
    h = make('releases = ["v5.3", "v5.10"]\n[[firmware]]\nname = "WA2"\n'
             'id = "0x6030000000140002"\nintroduced = "v5.3"\non_write = "check"\n'
             'reset = "0x0"\naccepts = ["0x0"]\n'
             'changes = [{ release = "v5.10", accepts = ["0x0", "0x1"] }]\n')
    assert errno_of(vcpu(h, "v5.3").set_one_reg, WA2, 0x1) == errno.EINVAL
    vcpu(h, "v5.10").set_one_reg(WA2, 0x1)


def test_wa2_v5_9_to_v5_10_refused_on_ssbs_hosts_only(linux):
    up, q = parse("upstream"), vmm("qemu")
    s, d = linux.index("v5.9"), linux.index("v5.10")
    for host, outcome in (("neoverse-n1", "refused"), ("max", "refused"),
                          ("cortex-a57", "preserved")):
        m = migrate(linux, up, q, s, d, host=host)
        assert m.outcome == outcome, (host, m)
        assert migrate(linux, up, q, d, s, host=host).outcome == "preserved"
    m = migrate(linux, up, q, s, d)
    assert m.detail == "EINVAL on KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2"


def test_wa2_host_tables_per_release(linux):
    wa2 = next(f for f in linux.firmware if f.id == WA2)
    assert wa2.hosts == {}       # no profile is constant: the engine follows the changes
    v59, v510 = linux.index("v5.9"), linux.index("v5.10")
    assert wa2.at(v59, "cortex-a57").reset == 0x1
    assert wa2.at(v59, "neoverse-n1").stores == 0x10
    for host in linux.hosts():
        assert wa2.at(v510, host).reset == 0x0
        assert wa2.at(v510, host).accepts == {0x0, 0x1}
    wa3 = next(f for f in linux.firmware if f.id == WA3)
    assert set(wa3.hosts) == {"cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1"}
    later = linux.since("v5.9")
    wa2s = next(f for f in later.firmware if f.id == WA2)
    assert wa2s.at(0, "cortex-a57").reset == 0x1 and wa2s.at(1, "cortex-a57").reset == 0x0


@pytest.mark.parametrize("host", ["neoverse-n1", "cortex-a57", "max"])
def test_engine_agrees_with_spec_around_v5_10(linux, host):
    h = linux.with_host(host)
    up, q = parse("upstream"), vmm("qemu")
    r = engine.evaluate(h, up, q)
    for src in ("v5.2", "v5.3", "v5.9", "v5.10", "v6.15"):
        for dst in ("v5.2", "v5.3", "v5.9", "v5.10", "v6.15"):
            s, d = h.index(src), h.index(dst)
            assert r.migration(s, d).outcome == migrate(h, up, q, s, d).outcome, (src, dst)


@pytest.mark.parametrize("text,fragment", [
    ('on_write = "store"\nstores = "0x10"', "stores is only for on_write = 'check'"),
    ('on_write = "check"\nchanges = [{ release = "b", hosts = 3 }]',
     "hosts must be a table of host CPU profiles"),
    ('on_write = "check"\nchanges = [{ release = "b", hosts = { x = { accepts = ["0x0"] } } }]',
     "missing key 'reset'"),
])
def test_bad_firmware_extensions(text, fragment):
    with pytest.raises(InputError, match=fragment):
        make('releases = ["a", "b"]\n[[firmware]]\nname = "W"\nid = "0x6030000000140002"\n'
             'introduced = "a"\n' + text + "\n")


# -- 9. --host ----------------------------------------------------------------------------

def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_host_option_selects_the_profile():
    rows = {}
    for host in (None, "max"):
        argv = ["matrix", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu",
                "--format", "csv"] + (["--host", host] if host else [])
        code, out, _ = run(*argv)
        assert code == 0
        rows[host] = {tuple(line.split(",")[:2]): line.split(",")[2]
                      for line in out.splitlines()[1:]}
    assert rows[None][("v6.14", "v6.15")] == "preserved"      # neoverse-n1
    assert rows["max"][("v6.14", "v6.15")] == "refused"       # -cpu max: WA_3 2 -> 0
    for cmd in (["compare"], ["cost", "--strategy", "upstream"]):
        code, out, _ = run(*cmd, "--history", "linux", "--vmm", "qemu", "--host", "max")
        assert code == 0 and out


@pytest.mark.parametrize("cmd", [["matrix", "--strategy", "upstream"], ["compare"],
                                 ["cost", "--strategy", "upstream"]])
def test_unknown_host_is_one_line_error(cmd):
    code, out, err = run(*cmd, "--history", "linux", "--vmm", "qemu", "--host", "m1")
    assert code == 2 and out == ""
    assert err.splitlines() == ["hcsim: error: history 'linux': unknown host profile 'm1' "
                                "(known: max, cortex-a57, cortex-a72, cortex-a76, neoverse-n1)"]
