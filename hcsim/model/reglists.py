"""The *other* registers a Linux release lists in ``KVM_GET_REG_LIST``.

QEMU saves and compares every id of ``KVM_GET_REG_LIST`` except the classes
CORE (0x10) and SVE (0x15).  hcsim models the hypercall registers (class 0x14
firmware, class 0x16 bitmaps) itself; this module supplies the rest: the
sorted ids of every other class (0x11 DEMUX, 0x13 SYSREG, ...) a release lists
for a vCPU, per host CPU profile and vCPU feature set.

The data file (``data/linux-reglists.toml``, format in its header and in
``data/linux-reglists.md``) names

* probe files (``data/kernel-probe/*.jsonl``, records of real kernels): their
  ``reg_list_chunk`` records are read at load time, so a probed release's list
  is the kernel's own answer, not a copy;
* cited changes (``[[change]]``: commit, release, ids added/removed, the
  feature sets and hosts they apply to, ``verified``), which carry the list
  from a probed release to the releases in between and before.

Only the standard library is used.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CLASS_CORE",
    "CLASS_DEMUX",
    "CLASS_FW",
    "CLASS_FW_BMAP",
    "CLASS_SVE",
    "CLASS_SYSREG",
    "EXCLUDED_CLASSES",
    "Change",
    "Gap",
    "Probe",
    "RegLists",
    "is_other",
    "load_reglists",
    "read_probe_lists",
    "reg_class",
    "sysreg_name",
]

# ---------------------------------------------------------------- register ids
# uapi arch/arm64/include/uapi/asm/kvm.h: bits 27:16 of an id are the
# "coprocessor" class (KVM_REG_ARM_COPROC_MASK / _SHIFT).
CLASS_CORE = 0x10  # KVM_REG_ARM_CORE
CLASS_DEMUX = 0x11  # KVM_REG_ARM_DEMUX
CLASS_SYSREG = 0x13  # KVM_REG_ARM64_SYSREG
CLASS_FW = 0x14  # KVM_REG_ARM_FW
CLASS_SVE = 0x15  # KVM_REG_ARM64_SVE
CLASS_FW_BMAP = 0x16  # KVM_REG_ARM_FW_FEAT_BMAP
#: Classes that are not "other" registers: CORE and SVE (QEMU does not save
#: them in its cpreg list) and the hypercall registers hcsim models itself.
EXCLUDED_CLASSES = frozenset({CLASS_CORE, CLASS_FW, CLASS_SVE, CLASS_FW_BMAP})

_ARM64 = 0x6000000000000000
_SIZE_SHIFT = 52


def reg_class(reg_id: int) -> int:
    """The class (bits 27:16) of a ``KVM_{GET,SET}_ONE_REG`` id."""
    return (reg_id >> 16) & 0xFFF


def is_other(reg_id: int) -> bool:
    """True for an id of a class other than CORE, SVE, 0x14 and 0x16."""
    return reg_class(reg_id) not in EXCLUDED_CLASSES


def _sysreg_fields(reg_id: int) -> tuple[int, int, int, int, int]:
    # KVM_REG_ARM64_SYSREG_{OP0,OP1,CRN,CRM,OP2}_MASK: bits 15:14, 13:11,
    # 10:7, 6:3, 2:0
    return ((reg_id >> 14) & 3, (reg_id >> 11) & 7, (reg_id >> 7) & 15,
            (reg_id >> 3) & 15, reg_id & 7)


# Register names by (op0, op1, CRn, CRm, op2): the encodings of the Arm ARM
# (DDI 0487, "AArch64 System Register Descriptions") as spelled in the kernel's
# arch/arm64/include/asm/sysreg.h and arch/arm64/tools/sysreg.  The timer
# registers carry their uapi names (arch/arm64/include/uapi/asm/kvm.h): KVM
# lists the timers under these ids, and KVM_REG_ARM_TIMER_CVAL / _CNT have
# each other's encodings (CNTVCT_EL0 is 3,3,14,0,2; CNTV_CVAL_EL0 3,3,14,3,2),
# a uapi mistake kept for compatibility.
_NAMES: dict[tuple[int, int, int, int, int], str] = {
    # debug (op0 = 2)
    (2, 0, 0, 2, 0): "MDCCINT_EL1",
    (2, 0, 0, 2, 2): "MDSCR_EL1",
    (2, 0, 0, 0, 2): "OSDTRRX_EL1",
    (2, 0, 0, 3, 2): "OSDTRTX_EL1",
    (2, 0, 0, 6, 2): "OSECCR_EL1",
    (2, 0, 1, 0, 4): "OSLAR_EL1",
    (2, 0, 1, 1, 4): "OSLSR_EL1",
    (2, 0, 1, 3, 4): "OSDLR_EL1",
    (2, 0, 1, 4, 4): "DBGPRCR_EL1",
    (2, 0, 7, 8, 6): "DBGCLAIMSET_EL1",
    (2, 0, 7, 9, 6): "DBGCLAIMCLR_EL1",
    (2, 0, 7, 14, 6): "DBGAUTHSTATUS_EL1",
    (2, 3, 0, 1, 0): "MDCCSR_EL0",
    (2, 3, 0, 4, 0): "DBGDTR_EL0",
    (2, 3, 0, 5, 0): "DBGDTRRX_EL0",
    (2, 4, 0, 7, 0): "DBGVCR32_EL2",
    # identification (op0 = 3, op1 = 0, CRn = 0)
    (3, 0, 0, 0, 0): "MIDR_EL1",
    (3, 0, 0, 0, 5): "MPIDR_EL1",
    (3, 0, 0, 0, 6): "REVIDR_EL1",
    (3, 0, 0, 1, 0): "ID_PFR0_EL1",
    (3, 0, 0, 1, 1): "ID_PFR1_EL1",
    (3, 0, 0, 1, 2): "ID_DFR0_EL1",
    (3, 0, 0, 1, 3): "ID_AFR0_EL1",
    (3, 0, 0, 1, 4): "ID_MMFR0_EL1",
    (3, 0, 0, 1, 5): "ID_MMFR1_EL1",
    (3, 0, 0, 1, 6): "ID_MMFR2_EL1",
    (3, 0, 0, 1, 7): "ID_MMFR3_EL1",
    (3, 0, 0, 2, 0): "ID_ISAR0_EL1",
    (3, 0, 0, 2, 1): "ID_ISAR1_EL1",
    (3, 0, 0, 2, 2): "ID_ISAR2_EL1",
    (3, 0, 0, 2, 3): "ID_ISAR3_EL1",
    (3, 0, 0, 2, 4): "ID_ISAR4_EL1",
    (3, 0, 0, 2, 5): "ID_ISAR5_EL1",
    (3, 0, 0, 2, 6): "ID_MMFR4_EL1",
    (3, 0, 0, 2, 7): "ID_ISAR6_EL1",
    (3, 0, 0, 3, 0): "MVFR0_EL1",
    (3, 0, 0, 3, 1): "MVFR1_EL1",
    (3, 0, 0, 3, 2): "MVFR2_EL1",
    (3, 0, 0, 3, 4): "ID_PFR2_EL1",
    (3, 0, 0, 3, 5): "ID_DFR1_EL1",
    (3, 0, 0, 3, 6): "ID_MMFR5_EL1",
    (3, 0, 0, 4, 0): "ID_AA64PFR0_EL1",
    (3, 0, 0, 4, 1): "ID_AA64PFR1_EL1",
    (3, 0, 0, 4, 2): "ID_AA64PFR2_EL1",
    (3, 0, 0, 4, 4): "ID_AA64ZFR0_EL1",
    (3, 0, 0, 4, 5): "ID_AA64SMFR0_EL1",
    (3, 0, 0, 4, 7): "ID_AA64FPFR0_EL1",
    (3, 0, 0, 5, 0): "ID_AA64DFR0_EL1",
    (3, 0, 0, 5, 1): "ID_AA64DFR1_EL1",
    (3, 0, 0, 5, 2): "ID_AA64DFR2_EL1",
    (3, 0, 0, 5, 4): "ID_AA64AFR0_EL1",
    (3, 0, 0, 5, 5): "ID_AA64AFR1_EL1",
    (3, 0, 0, 6, 0): "ID_AA64ISAR0_EL1",
    (3, 0, 0, 6, 1): "ID_AA64ISAR1_EL1",
    (3, 0, 0, 6, 2): "ID_AA64ISAR2_EL1",
    (3, 0, 0, 6, 3): "ID_AA64ISAR3_EL1",
    (3, 0, 0, 7, 0): "ID_AA64MMFR0_EL1",
    (3, 0, 0, 7, 1): "ID_AA64MMFR1_EL1",
    (3, 0, 0, 7, 2): "ID_AA64MMFR2_EL1",
    (3, 0, 0, 7, 3): "ID_AA64MMFR3_EL1",
    (3, 0, 0, 7, 4): "ID_AA64MMFR4_EL1",
    # EL1 system control, memory, exceptions
    (3, 0, 1, 0, 0): "SCTLR_EL1",
    (3, 0, 1, 0, 1): "ACTLR_EL1",
    (3, 0, 1, 0, 2): "CPACR_EL1",
    (3, 0, 1, 0, 3): "SCTLR2_EL1",
    (3, 0, 1, 0, 5): "RGSR_EL1",
    (3, 0, 1, 0, 6): "GCR_EL1",
    (3, 0, 1, 2, 0): "ZCR_EL1",
    (3, 0, 1, 2, 1): "TRFCR_EL1",
    (3, 0, 1, 2, 4): "SMPRI_EL1",
    (3, 0, 1, 2, 6): "SMCR_EL1",
    (3, 0, 2, 0, 0): "TTBR0_EL1",
    (3, 0, 2, 0, 1): "TTBR1_EL1",
    (3, 0, 2, 0, 2): "TCR_EL1",
    (3, 0, 2, 0, 3): "TCR2_EL1",
    (3, 0, 2, 1, 0): "APIAKEYLO_EL1",
    (3, 0, 2, 1, 1): "APIAKEYHI_EL1",
    (3, 0, 2, 1, 2): "APIBKEYLO_EL1",
    (3, 0, 2, 1, 3): "APIBKEYHI_EL1",
    (3, 0, 2, 2, 0): "APDAKEYLO_EL1",
    (3, 0, 2, 2, 1): "APDAKEYHI_EL1",
    (3, 0, 2, 2, 2): "APDBKEYLO_EL1",
    (3, 0, 2, 2, 3): "APDBKEYHI_EL1",
    (3, 0, 2, 3, 0): "APGAKEYLO_EL1",
    (3, 0, 2, 3, 1): "APGAKEYHI_EL1",
    (3, 0, 2, 5, 0): "GCSCR_EL1",
    (3, 0, 2, 5, 1): "GCSPR_EL1",
    (3, 0, 2, 5, 2): "GCSCRE0_EL1",
    (3, 0, 4, 6, 0): "ICC_PMR_EL1",
    (3, 0, 5, 1, 0): "AFSR0_EL1",
    (3, 0, 5, 1, 1): "AFSR1_EL1",
    (3, 0, 5, 2, 0): "ESR_EL1",
    (3, 0, 5, 6, 0): "TFSR_EL1",
    (3, 0, 5, 6, 1): "TFSRE0_EL1",
    (3, 0, 6, 0, 0): "FAR_EL1",
    (3, 0, 7, 4, 0): "PAR_EL1",
    (3, 0, 9, 14, 1): "PMINTENSET_EL1",
    (3, 0, 9, 14, 2): "PMINTENCLR_EL1",
    (3, 0, 9, 14, 6): "PMMIR_EL1",
    (3, 0, 10, 2, 0): "MAIR_EL1",
    (3, 0, 10, 2, 2): "PIRE0_EL1",
    (3, 0, 10, 2, 3): "PIR_EL1",
    (3, 0, 10, 2, 4): "POR_EL1",
    (3, 0, 10, 3, 0): "AMAIR_EL1",
    (3, 0, 10, 4, 0): "LORSA_EL1",
    (3, 0, 10, 4, 1): "LOREA_EL1",
    (3, 0, 10, 4, 2): "LORN_EL1",
    (3, 0, 10, 4, 3): "LORC_EL1",
    (3, 0, 10, 4, 7): "LORID_EL1",
    (3, 0, 12, 0, 0): "VBAR_EL1",
    (3, 0, 12, 1, 1): "DISR_EL1",
    (3, 0, 13, 0, 1): "CONTEXTIDR_EL1",
    (3, 0, 13, 0, 4): "TPIDR_EL1",
    (3, 0, 13, 0, 5): "ACCDATA_EL1",
    (3, 0, 13, 0, 7): "SCXTNUM_EL1",
    (3, 0, 14, 1, 0): "CNTKCTL_EL1",
    (3, 1, 0, 0, 0): "CCSIDR_EL1",
    (3, 1, 0, 0, 1): "CLIDR_EL1",
    (3, 1, 0, 0, 2): "CCSIDR2_EL1",
    (3, 1, 0, 0, 4): "GMID_EL1",
    (3, 1, 0, 0, 6): "SMIDR_EL1",
    (3, 1, 0, 0, 7): "AIDR_EL1",
    (3, 2, 0, 0, 0): "CSSELR_EL1",
    (3, 3, 0, 0, 1): "CTR_EL0",
    (3, 3, 0, 0, 7): "DCZID_EL0",
    (3, 3, 2, 5, 1): "GCSPR_EL0",
    (3, 3, 4, 4, 2): "FPMR",
    (3, 3, 9, 12, 0): "PMCR_EL0",
    (3, 3, 9, 12, 1): "PMCNTENSET_EL0",
    (3, 3, 9, 12, 2): "PMCNTENCLR_EL0",
    (3, 3, 9, 12, 3): "PMOVSCLR_EL0",
    (3, 3, 9, 12, 4): "PMSWINC_EL0",
    (3, 3, 9, 12, 5): "PMSELR_EL0",
    (3, 3, 9, 12, 6): "PMCEID0_EL0",
    (3, 3, 9, 12, 7): "PMCEID1_EL0",
    (3, 3, 9, 13, 0): "PMCCNTR_EL0",
    (3, 3, 9, 13, 1): "PMXEVTYPER_EL0",
    (3, 3, 9, 13, 2): "PMXEVCNTR_EL0",
    (3, 3, 9, 14, 0): "PMUSERENR_EL0",
    (3, 3, 9, 14, 3): "PMOVSSET_EL0",
    (3, 3, 10, 2, 4): "POR_EL0",
    (3, 3, 13, 0, 2): "TPIDR_EL0",
    (3, 3, 13, 0, 3): "TPIDRRO_EL0",
    (3, 3, 13, 0, 5): "TPIDR2_EL0",
    (3, 3, 13, 0, 7): "SCXTNUM_EL0",
    (3, 3, 14, 0, 1): "KVM_REG_ARM_PTIMER_CNT",  # CNTPCT_EL0
    (3, 3, 14, 0, 2): "KVM_REG_ARM_TIMER_CVAL",  # encoding of CNTVCT_EL0
    (3, 3, 14, 2, 1): "KVM_REG_ARM_PTIMER_CTL",  # CNTP_CTL_EL0
    (3, 3, 14, 2, 2): "KVM_REG_ARM_PTIMER_CVAL",  # CNTP_CVAL_EL0
    (3, 3, 14, 3, 1): "KVM_REG_ARM_TIMER_CTL",  # CNTV_CTL_EL0
    (3, 3, 14, 3, 2): "KVM_REG_ARM_TIMER_CNT",  # encoding of CNTV_CVAL_EL0
    (3, 3, 14, 15, 7): "PMCCFILTR_EL0",
    (3, 4, 3, 0, 0): "DACR32_EL2",
    (3, 4, 5, 0, 1): "IFSR32_EL2",
    (3, 4, 5, 3, 0): "FPEXC32_EL2",
}
# DBGB{V,C}R<n>_EL1, DBGW{V,C}R<n>_EL1: op0 2, op1 0, CRn 0, CRm n, op2 4..7
for _n in range(16):
    for _op2, _what in ((4, "DBGBVR"), (5, "DBGBCR"), (6, "DBGWVR"), (7, "DBGWCR")):
        _NAMES[(2, 0, 0, _n, _op2)] = f"{_what}{_n}_EL1"
# PMEVCNTR<n>_EL0: 3,3,14,8+n/8,n%8; PMEVTYPER<n>_EL0: 3,3,14,12+n/8,n%8
# (n = 0..30; 3,3,14,15,7 is PMCCFILTR_EL0)
for _n in range(31):
    _NAMES[(3, 3, 14, 8 + _n // 8, _n % 8)] = f"PMEVCNTR{_n}_EL0"
    _NAMES[(3, 3, 14, 12 + _n // 8, _n % 8)] = f"PMEVTYPER{_n}_EL0"
del _n, _op2, _what

# class 0x14 / 0x16 (uapi names without the KVM_REG_ARM_ prefix, as hcsim
# names them elsewhere)
_FW_NAMES = {
    0x6030000000140000: "PSCI_VERSION",
    0x6030000000140001: "SMCCC_ARCH_WORKAROUND_1",
    0x6030000000140002: "SMCCC_ARCH_WORKAROUND_2",
    0x6030000000140003: "SMCCC_ARCH_WORKAROUND_3",
    0x6030000000160000: "STD_BMAP",
    0x6030000000160001: "STD_HYP_BMAP",
    0x6030000000160002: "VENDOR_HYP_BMAP",
    0x6030000000160003: "VENDOR_HYP_BMAP_2",
}

# KVM_REG_ARM_DEMUX_ID_MASK / _VAL_MASK: bits 15:8 the demux id, 7:0 its value
_DEMUX_ID_CCSIDR = 0x00


def sysreg_name(reg_id: int) -> str:
    """Kernel name of a register id, else a generic name.

    System registers (class 0x13) are named from their op0/op1/CRn/CRm/op2
    encoding (``TCR2_EL1``, ``PMCCNTR_EL0``, the timers by their uapi names
    such as ``KVM_REG_ARM_TIMER_CNT``), falling back to the assembler's
    generic ``S3_1_C2_C0_3`` form.  A DEMUX id of ``KVM_REG_ARM_DEMUX_ID_CCSIDR``
    is ``CCSIDR_EL1[CSSELR=n]`` (``n`` the CSSELR_EL1 value it selects:
    ``(level - 1) << 1 | InD``).  Firmware and bitmap registers get hcsim's
    names (``PSCI_VERSION``, ``VENDOR_HYP_BMAP_2``); anything else its hex id.
    """
    reg_id = int(reg_id)
    cls = reg_class(reg_id)
    if cls == CLASS_SYSREG:
        enc = _sysreg_fields(reg_id)
        name = _NAMES.get(enc)
        if name is None:
            op0, op1, crn, crm, op2 = enc
            name = f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"
        return name
    if cls == CLASS_DEMUX and (reg_id >> 8) & 0xFF == _DEMUX_ID_CCSIDR:
        return f"CCSIDR_EL1[CSSELR={reg_id & 0xFF}]"
    if reg_id in _FW_NAMES:
        return _FW_NAMES[reg_id]
    return f"{reg_id:#018x}"


# ---------------------------------------------------------------- probe files

def read_probe_lists(path: str | Path) -> dict[str, tuple[int, ...]]:
    """The whole ``KVM_GET_REG_LIST`` of every VM of a probe file, in list order.

    Built from the ``reg_list_chunk`` records; raises ``ValueError`` if the
    chunks do not add up to the ``reg_list`` record's ``total``.
    """
    path = Path(path)
    lists: dict[str, list[int]] = {}
    totals: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read probe file ({e.strerror})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            t = rec["t"]
            if t == "reg_list":
                totals[rec["vm"]] = int(rec["total"])
                lists[rec["vm"]] = []
            elif t == "reg_list_chunk":
                vm = rec["vm"]
                if vm not in lists:
                    raise ValueError("reg_list_chunk before reg_list")
                if int(rec["start"]) != len(lists[vm]):
                    raise ValueError(f"chunk starts at {rec['start']}, expected {len(lists[vm])}")
                lists[vm].extend(int(x, 16) for x in rec["ids"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: bad register list record ({e})") from None
    for vm, ids in lists.items():
        if len(ids) != totals[vm]:
            raise ValueError(f"{path}: VM {vm} lists {len(ids)} ids in chunks, reg_list total {totals[vm]}")
    return {vm: tuple(ids) for vm, ids in lists.items()}


_MODES = frozenset({"nvhe", "vhe", "protected"})
_COMMIT = re.compile(r"^[0-9a-f]{12,40}$")


def _variant_of(file_name: str, kernel: str) -> tuple[str, str, bool]:
    """(host, mode, pmu) of ``<kernel>[.<variant>].jsonl`` (tools/kvm-probe naming)."""
    stem = file_name.removesuffix(".jsonl")
    if stem == kernel:
        parts: list[str] = []
    elif stem.startswith(kernel + "."):
        parts = stem[len(kernel) + 1:].split(".")
    else:
        raise ValueError(f"file {file_name!r} is not a probe of kernel {kernel!r}")
    host, mode, pmu = "max", None, False
    for p in parts:
        if p.startswith("cpu-") and len(p) > 4:
            host = p[4:]
        elif p in _MODES:
            mode = p
        elif p == "pmu":
            pmu = True
        else:
            raise ValueError(f"file {file_name!r}: unknown variant part {p!r}")
    if mode is None:  # run-probe.sh: nvhe with -cpu max, vhe with another model
        mode = "nvhe" if host == "max" else "vhe"
    return host, mode, pmu


# ---------------------------------------------------------------- data model

@dataclass(frozen=True)
class Probe:
    """A probed kernel standing for a release."""

    release: str
    kernel: str
    files: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Change:
    """A cited change of the list between two releases."""

    release: str  # first mainline release with the change
    commit: str
    title: str
    added: tuple[int, ...]
    removed: tuple[int, ...]
    feature_sets: frozenset[str]  # names of the feature sets it applies to
    hosts: frozenset[str]  # hosts it applies to
    verified: bool
    source: str
    note: str = ""

    def applies(self, feature_set: str, host: str) -> bool:
        return feature_set in self.feature_sets and host in self.hosts


@dataclass(frozen=True)
class Gap:
    """Releases whose lists were derived without researching every change."""

    first: str
    last: str
    note: str


@dataclass
class RegLists:
    """Other-register lists of every release, host and vCPU feature set."""

    path: Path
    releases: tuple[str, ...]
    hosts: tuple[str, ...]
    feature_set_names: dict[str, frozenset[str]]
    probes: tuple[Probe, ...]
    changes: tuple[Change, ...]
    gaps: tuple[Gap, ...]
    default_host: str
    # (release, host, feature set name) -> sorted other ids, for probed releases
    _probed: dict[tuple[str, str, str], tuple[int, ...]] = field(repr=False, default_factory=dict)
    # which probe file (and VM) each probed list came from
    _sources: dict[tuple[str, str, str], tuple[str, ...]] = field(repr=False, default_factory=dict)
    _cache: dict[tuple[str, str, str], tuple[int, ...]] = field(repr=False, default_factory=dict)

    # -- lookups ---------------------------------------------------------
    @property
    def feature_sets(self) -> tuple[frozenset[str], ...]:
        """The vCPU feature sets the data covers (e.g. ``frozenset()``, ``{"pmu"}``)."""
        return tuple(self.feature_set_names.values())

    def _where(self) -> str:
        return str(self.path)

    def _index(self, release: str) -> int:
        try:
            return self.releases.index(release)
        except ValueError:
            raise ValueError(f"{self._where()}: unknown release {release!r} "
                             f"(releases {self.releases[0]}..{self.releases[-1]})") from None

    def _fs_name(self, features: Iterable[str]) -> str:
        if isinstance(features, str):  # "pmu" would be {"p", "m", "u"}
            raise ValueError(f"{self._where()}: features must be a set of names, not the string {features!r}")
        want = frozenset(features)
        for name, fs in self.feature_set_names.items():
            if fs == want:
                return name
        have = ", ".join("{" + ", ".join(sorted(fs)) + "}" for fs in self.feature_set_names.values())
        raise ValueError(f"{self._where()}: no feature set {{{', '.join(sorted(want))}}} (have {have})")

    def _host(self, host: str) -> str:
        if host not in self.hosts:
            raise ValueError(f"{self._where()}: unknown host {host!r} (hosts {', '.join(self.hosts)})")
        return host

    def other(self, release: str, host: str, features: Iterable[str]) -> tuple[int, ...]:
        """Sorted ids of classes other than 0x10/0x14/0x15/0x16 that ``release``
        lists for a vCPU with ``features`` on ``host``."""
        idx = self._index(release)
        host = self._host(host)
        fs = self._fs_name(features)
        key = (release, host, fs)
        got = self._cache.get(key)
        if got is None:
            got = self._derive(idx, host, fs)
            self._cache[key] = got
        return got

    def names(self, release: str, host: str, features: Iterable[str]) -> tuple[str, ...]:
        """``other()`` as kernel names (``sysreg_name``), in id order."""
        return tuple(sysreg_name(i) for i in self.other(release, host, features))

    def anchors(self, host: str, features: Iterable[str]) -> tuple[str, ...]:
        """Releases whose list for ``host`` and ``features`` comes from a probe file."""
        host = self._host(host)
        fs = self._fs_name(features)
        return tuple(r for r in self.releases if (r, host, fs) in self._probed)

    def probe_sources(self, release: str, host: str, features: Iterable[str]) -> tuple[str, ...]:
        """Probe files (``file:VM``) a probed list was read from; empty if derived."""
        self._index(release)
        return self._sources.get((release, self._host(host), self._fs_name(features)), ())

    def path_changes(self, release: str, host: str, features: Iterable[str]) -> tuple[Change, ...]:
        """The changes applied to derive ``release`` from its probed anchor."""
        idx = self._index(release)
        host = self._host(host)
        fs = self._fs_name(features)
        return self._path(idx, host, fs)[1]

    def verified(self, release: str, host: str, features: Iterable[str]) -> bool:
        """False if the list rests on an unverified change or lies in a gap."""
        if any(not c.verified for c in self.path_changes(release, host, features)):
            return False
        if self.probe_sources(release, host, features):
            return True
        idx = self._index(release)
        return not any(self._index(g.first) <= idx <= self._index(g.last) for g in self.gaps)

    # -- derivation ------------------------------------------------------
    def _path(self, idx: int, host: str, fs: str) -> tuple[str, tuple[Change, ...], bool]:
        """(anchor release, changes to apply, forward?) for release index ``idx``."""
        anchors = [i for i, r in enumerate(self.releases) if (r, host, fs) in self._probed]
        if not anchors:
            raise ValueError(f"{self._where()}: no probe file gives feature set {fs!r} on host {host!r}")
        if idx in anchors:
            return self.releases[idx], (), True
        pos = bisect.bisect_left(anchors, idx)
        if pos > 0:  # forward from the previous probed release
            a = anchors[pos - 1]
            between = [c for c in self.changes
                       if a < self._index(c.release) <= idx and c.applies(fs, host)]
            return self.releases[a], tuple(between), True
        b = anchors[0]  # before the first probe: undo the changes back to it
        between = [c for c in self.changes
                   if idx < self._index(c.release) <= b and c.applies(fs, host)]
        return self.releases[b], tuple(reversed(between)), False

    def _derive(self, idx: int, host: str, fs: str) -> tuple[int, ...]:
        anchor, changes, forward = self._path(idx, host, fs)
        ids = set(self._probed[(anchor, host, fs)])
        for c in changes:
            ids = _apply(ids, c, forward, self._where())
        return tuple(sorted(ids))

    def mismatches(self) -> list[str]:
        """Where the changes do not carry one probed release to the next one.

        For every host and feature set, the list of each probed release with
        the changes up to the next probed release applied must equal that
        release's probed list.  Returns one line per disagreement."""
        out = []
        for host in self.hosts:
            for fs in self.feature_set_names:
                anchors = [i for i, r in enumerate(self.releases) if (r, host, fs) in self._probed]
                for a, b in zip(anchors, anchors[1:]):
                    ids = set(self._probed[(self.releases[a], host, fs)])
                    try:
                        for c in self.changes:
                            if a < self._index(c.release) <= b and c.applies(fs, host):
                                ids = _apply(ids, c, True, self._where())
                    except ValueError as e:
                        out.append(str(e))
                        continue
                    want = set(self._probed[(self.releases[b], host, fs)])
                    if ids != want:
                        extra = ", ".join(sysreg_name(i) for i in sorted(ids - want))
                        missing = ", ".join(sysreg_name(i) for i in sorted(want - ids))
                        out.append(f"{self.releases[a]} -> {self.releases[b]} ({host}, {fs}): "
                                   f"changes leave [{extra}] not probed, miss probed [{missing}]")
        return out


def _apply(ids: set[int], c: Change, forward: bool, where: str) -> set[int]:
    add, rem = (c.added, c.removed) if forward else (c.removed, c.added)
    what = f"{where}: [[change]] {c.commit or repr(c.title)} ({c.release})"
    if not set(rem) <= ids:
        gone = ", ".join(sysreg_name(i) for i in sorted(set(rem) - ids))
        raise ValueError(f"{what} {'removes' if forward else 'undoes the addition of'} "
                         f"ids that are not listed: {gone}")
    if set(add) & ids:
        dup = ", ".join(sysreg_name(i) for i in sorted(set(add) & ids))
        raise ValueError(f"{what} {'adds' if forward else 'undoes the removal of'} "
                         f"ids already listed: {dup}")
    return (ids - set(rem)) | set(add)


# ---------------------------------------------------------------- loading

def _req(tab: Mapping, key: str, kind: type | tuple[type, ...], where: str):
    if key not in tab:
        raise ValueError(f"{where}: missing {key!r}")
    val = tab[key]
    if not isinstance(val, kind) or (kind is int and isinstance(val, bool)):
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(val).__name__})")
    return val


def _str_list(tab: Mapping, key: str, where: str, default=None) -> list[str]:
    if key not in tab and default is not None:
        return list(default)
    val = _req(tab, key, list, where)
    if not all(isinstance(v, str) and v for v in val):
        raise ValueError(f"{where}: {key!r} must be a list of non-empty strings")
    return val


def _parse_id(text, where: str) -> int:
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ValueError(f"{where}: register id {text!r} is not a 0x hex string")
    try:
        val = int(text, 16)
    except ValueError:
        raise ValueError(f"{where}: register id {text!r} is not hex") from None
    if val >> 60 != _ARM64 >> 60 or not 0 <= val < 1 << 64:
        raise ValueError(f"{where}: {text} is not a KVM_REG_ARM64 id")
    if not is_other(val):
        raise ValueError(f"{where}: {text} is of class {reg_class(val):#x}, not an other register")
    return val


def _id_list(tab: Mapping, key: str, where: str) -> tuple[int, ...]:
    entries = tab.get(key, [])
    if not isinstance(entries, list):
        raise ValueError(f"{where}: {key!r} must be a list of {{ id, name }} tables")
    ids = []
    for k, e in enumerate(entries):
        w = f"{where} {key}[{k}]"
        if not isinstance(e, dict):
            raise ValueError(f"{w}: not a {{ id, name }} table")
        val = _parse_id(e.get("id"), w)
        name = _req(e, "name", str, w)
        if name != sysreg_name(val):
            raise ValueError(f"{w}: name {name!r} but {e['id']} is {sysreg_name(val)}")
        ids.append(val)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: {key!r} lists an id twice")
    return tuple(sorted(ids))


def load_reglists(path: str | Path) -> RegLists:
    """Read a register-list data file (``data/linux-reglists.toml``) and the
    probe files it names; raise ``ValueError`` (one line: file and entry) on
    bad input."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not TOML ({e})") from None
    where = str(path)
    if _req(doc, "format", int, where) != 1:
        raise ValueError(f"{where}: unknown format {doc['format']!r} (this loader reads 1)")
    releases = tuple(_str_list(doc, "releases", where))
    if len(set(releases)) != len(releases) or not releases:
        raise ValueError(f"{where}: 'releases' is empty or repeats a release")
    hosts = tuple(_str_list(doc, "hosts", where))
    if len(set(hosts)) != len(hosts) or not hosts:
        raise ValueError(f"{where}: 'hosts' is empty or repeats a host")
    default_host = _req(doc, "default_host", str, where)
    if default_host not in hosts:
        raise ValueError(f"{where}: default_host {default_host!r} is not in 'hosts'")
    probe_dir = path.parent / _req(doc, "probe_dir", str, where)
    fill_hosts = _req(doc, "fill_hosts", bool, where)

    # feature sets and the probe VMs that have them
    fs_names: dict[str, frozenset[str]] = {}
    vm_fs: dict[str, str] = {}
    for k, tab in enumerate(_req(doc, "feature_set", list, where)):
        w = f"{where}: [[feature_set]] #{k + 1}"
        name = _req(tab, "name", str, w)
        w = f"{where}: [[feature_set]] {name!r}"
        feats = frozenset(_str_list(tab, "features", w))
        if name in fs_names or feats in fs_names.values():
            raise ValueError(f"{w}: repeats a name or a feature set")
        fs_names[name] = feats
        for vm in _str_list(tab, "vms", w):
            if vm in vm_fs:
                raise ValueError(f"{w}: VM {vm!r} already belongs to {vm_fs[vm]!r}")
            vm_fs[vm] = name

    def rel(tab, key, w):
        r = _req(tab, key, str, w)
        if r not in releases:
            raise ValueError(f"{w}: unknown release {r!r}")
        return r

    # probes
    probed: dict[tuple[str, str, str], tuple[int, ...]] = {}
    sources: dict[tuple[str, str, str], list[str]] = {}
    probes = []
    for k, tab in enumerate(_req(doc, "probe", list, where)):
        w = f"{where}: [[probe]] #{k + 1}"
        kernel = _req(tab, "kernel", str, w)
        w = f"{where}: [[probe]] {kernel!r}"
        release = rel(tab, "release", w)
        files = _str_list(tab, "files", w)
        for fname in files:
            fw = f"{w} file {fname!r}"
            try:
                host, _mode, _pmu = _variant_of(Path(fname).name, kernel)
            except ValueError as e:
                raise ValueError(f"{w}: {e}") from None
            if host not in hosts:
                raise ValueError(f"{fw}: host {host!r} is not in 'hosts'")
            try:
                lists = read_probe_lists(probe_dir / fname)
            except ValueError as e:
                raise ValueError(f"{fw}: {e}") from None
            if not lists:
                raise ValueError(f"{fw}: no register list records")
            for vm, ids in lists.items():
                fs = vm_fs.get(vm)
                if fs is None:
                    continue  # a VM no feature set claims (none today)
                other = tuple(sorted(i for i in ids if is_other(i)))
                key = (release, host, fs)
                if key in probed and probed[key] != other:
                    a = set(probed[key])
                    diff = ", ".join(sysreg_name(i) for i in sorted(a ^ set(other)))
                    raise ValueError(f"{fw}: VM {vm} disagrees with {sources[key][0]} "
                                     f"on the {fs!r} list of {release} on {host}: {diff}")
                probed[key] = other
                sources.setdefault(key, []).append(f"{fname}:{vm}")
        probes.append(Probe(release, kernel, tuple(files), str(tab.get("note", ""))))

    if fill_hosts:
        # a list probed on some hosts holds for all hosts when every probed
        # host agrees (the data's finding: the host profile never changed it)
        for release in releases:
            for fs in fs_names:
                got = {h: probed[(release, h, fs)] for h in hosts if (release, h, fs) in probed}
                if not got or len(got) == len(hosts):
                    continue
                if len(set(got.values())) != 1:
                    raise ValueError(f"{where}: fill_hosts, but the {fs!r} lists of {release} "
                                     f"differ between hosts {', '.join(sorted(got))}")
                only = next(iter(got.values()))
                src = [s for h in got for s in sources[(release, h, fs)]]
                for h in hosts:
                    if h not in got:
                        probed[(release, h, fs)] = only
                        sources[(release, h, fs)] = [f"{s} (host filled)" for s in src]

    changes = []
    for k, tab in enumerate(doc.get("change", [])):
        w = f"{where}: [[change]] #{k + 1}"
        commit = _req(tab, "commit", str, w)
        title = _req(tab, "title", str, w)
        w = f"{where}: [[change]] {commit or title!r}"
        release = rel(tab, "release", w)
        verified = _req(tab, "verified", bool, w)
        source = _req(tab, "source", str, w)
        note = tab.get("note", "")
        if not verified and not note:
            raise ValueError(f"{w}: verified = false needs a note saying what is not verified")
        # a verified change names its commit (12+ hex digits); an unverified
        # one may leave it empty rather than guess
        if (commit or verified) and not _COMMIT.match(commit):
            raise ValueError(f"{w}: commit {commit!r} is not 12-40 hex digits")
        fsets = _str_list(tab, "feature_sets", w, default=list(fs_names))
        for fs in fsets:
            if fs not in fs_names:
                raise ValueError(f"{w}: unknown feature set {fs!r}")
        hs = _str_list(tab, "hosts", w, default=list(hosts))
        for h in hs:
            if h not in hosts:
                raise ValueError(f"{w}: unknown host {h!r}")
        added = _id_list(tab, "added", w)
        removed = _id_list(tab, "removed", w)
        if not added and not removed:
            raise ValueError(f"{w}: adds and removes nothing")
        if set(added) & set(removed):
            raise ValueError(f"{w}: an id is both added and removed")
        changes.append(Change(release, commit, title, added, removed, frozenset(fsets),
                              frozenset(hs), verified, source, note))
    changes.sort(key=lambda c: releases.index(c.release))

    gaps = []
    for k, tab in enumerate(doc.get("gap", [])):
        w = f"{where}: [[gap]] #{k + 1}"
        first, last = rel(tab, "first", w), rel(tab, "last", w)
        if releases.index(first) > releases.index(last):
            raise ValueError(f"{w}: first {first} is after last {last}")
        gaps.append(Gap(first, last, _req(tab, "note", str, w)))

    out = RegLists(path, releases, hosts, fs_names, tuple(probes), tuple(changes), tuple(gaps),
                   default_host, probed, {k: tuple(v) for k, v in sources.items()})
    for h in hosts:
        for fs in fs_names:
            if not any((r, h, fs) in probed for r in releases):
                raise ValueError(f"{where}: no probe file gives feature set {fs!r} on host {h!r}")
    # every derived list must be computable (a change cannot remove an id
    # that is not there), so bad data fails here and not in a later lookup
    for r in releases:
        for h in hosts:
            for feats in fs_names.values():
                out.other(r, h, feats)
    bad = out.mismatches()
    if bad:
        raise ValueError(f"{where}: the changes do not join the probes: {bad[0]}"
                         + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    return out
