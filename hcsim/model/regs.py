"""Register ids as ``KVM_{GET,SET}_ONE_REG`` encodes them (uapi ``asm/kvm.h``).

An id is 64 bits: arch in 63:56, log2 of the size in bytes in 55:52, the
"coprocessor" class in 27:16 and an index in 15:0.  Names follow the kernel
(``KVM_REG_ARM_STD_BMAP``) so a kvmarm reader recognises every line.
"""

from __future__ import annotations

from dataclasses import dataclass

KVM_REG_ARM64 = 0x6000000000000000
KVM_REG_SIZE_SHIFT = 52
KVM_REG_SIZE_MASK = 0x00F0000000000000
KVM_REG_ARM_COPROC_SHIFT = 16
KVM_REG_ARM_COPROC_MASK = 0x0FFF0000
KVM_REG_INDEX_MASK = 0xFFFF

# "Coprocessor" classes of arch/arm64/include/uapi/asm/kvm.h.
KVM_REG_ARM_CORE = 0x10
KVM_REG_ARM_DEMUX = 0x11
KVM_REG_ARM64_SYSREG = 0x13
KVM_REG_ARM_FW = 0x14
KVM_REG_ARM64_SVE = 0x15
KVM_REG_ARM_FW_FEAT_BMAP = 0x16

COPROC_NAMES = {
    KVM_REG_ARM_CORE: "CORE",
    KVM_REG_ARM_DEMUX: "DEMUX",
    KVM_REG_ARM64_SYSREG: "SYSREG",
    KVM_REG_ARM_FW: "FW",
    KVM_REG_ARM64_SVE: "SVE",
    KVM_REG_ARM_FW_FEAT_BMAP: "FW_FEAT_BMAP",
}

#: Register widths KVM can encode: U8 (8 bits) to U2048.
WIDTHS = tuple(8 << n for n in range(9))

# Firmware and bitmap registers that mainline defines (FACTS.md section 1).
KERNEL_NAMES = {
    0x6030000000140000: "KVM_REG_ARM_PSCI_VERSION",
    0x6030000000140001: "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1",
    0x6030000000140002: "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2",
    0x6030000000140003: "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3",
    0x6030000000160000: "KVM_REG_ARM_STD_BMAP",
    0x6030000000160001: "KVM_REG_ARM_STD_HYP_BMAP",
    0x6030000000160002: "KVM_REG_ARM_VENDOR_HYP_BMAP",
    0x6030000000160003: "KVM_REG_ARM_VENDOR_HYP_BMAP_2",
}


def size_field(width: int) -> int:
    """The 55:52 size field for a register of ``width`` bits."""
    if width not in WIDTHS:
        raise ValueError(f"register width {width} is not one of {WIDTHS}")
    return (width // 8).bit_length() - 1


def reg_id(coproc: int, index: int, width: int = 64) -> int:
    """Encode an arm64 ONE_REG id."""
    return (KVM_REG_ARM64 | size_field(width) << KVM_REG_SIZE_SHIFT
            | coproc << KVM_REG_ARM_COPROC_SHIFT | index)


def fw_reg(index: int) -> int:
    """A U64 firmware register, ``KVM_REG_ARM_FW_REG(index)``."""
    return reg_id(KVM_REG_ARM_FW, index)


def feat_reg(index: int, width: int = 64) -> int:
    """A feature bitmap register of class 0x16, ``KVM_REG_ARM_FW_FEAT_BMAP_REG``."""
    return reg_id(KVM_REG_ARM_FW_FEAT_BMAP, index, width)


@dataclass(frozen=True)
class RegId:
    """A decoded register id."""

    id: int
    width: int
    coproc: int
    index: int

    @property
    def name(self) -> str:
        return reg_name(self.id)


def decode(rid: int) -> RegId:
    """Split an id into its fields (width in bits)."""
    return RegId(rid, width_of(rid), coproc_of(rid), rid & KVM_REG_INDEX_MASK)


def width_of(rid: int) -> int:
    return 8 << ((rid & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)


def coproc_of(rid: int) -> int:
    return (rid & KVM_REG_ARM_COPROC_MASK) >> KVM_REG_ARM_COPROC_SHIFT


def is_feature(rid: int) -> bool:
    return coproc_of(rid) == KVM_REG_ARM_FW_FEAT_BMAP


def reg_name(rid: int, bitmaps: bool = True) -> str:
    """Kernel name of a register, or ``FW_FEAT_BMAP(3, U2048)`` style.

    ``bitmaps=False`` keeps the kernel's bitmap names (``STD_BMAP``...) for
    class 0x16 out: under another strategy index 0 is not ``STD_BMAP``.
    """
    if rid in KERNEL_NAMES and (bitmaps or not is_feature(rid)):
        return KERNEL_NAMES[rid]
    d = decode(rid)
    if d.coproc in (KVM_REG_ARM_DEMUX, KVM_REG_ARM64_SYSREG):
        from hcsim.model.reglists import sysreg_name  # other registers: TCR2_EL1
        return sysreg_name(rid)
    cls = COPROC_NAMES.get(d.coproc, f"0x{d.coproc:x}")
    return f"{cls}({d.index}, U{d.width})"


def short_name(rid: int) -> str:
    """Name without the ``KVM_REG_ARM_`` prefix, for tables and emails."""
    return reg_name(rid).removeprefix("KVM_REG_ARM_")


def hexid(rid: int) -> str:
    return f"0x{rid:016x}"
