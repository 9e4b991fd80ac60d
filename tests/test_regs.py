from hcsim.model import regs, smccc


def test_kvm_reg_arm_fw_reg_encoding_matches_uapi():
    # KVM_REG_ARM_FW_REG(0) = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | 0x14 << 16
    assert regs.fw_reg(0) == 0x6030000000140000
    assert regs.feat_reg(3) == 0x6030000000160003


def test_decode_splits_size_class_and_index():
    d = regs.decode(0x6080000000160005)
    assert (d.width, d.coproc, d.index) == (2048, 0x16, 5)
    assert regs.decode(0x6030000000140002).width == 64


def test_every_width_round_trips():
    for width in regs.WIDTHS:
        assert regs.width_of(regs.feat_reg(7, width)) == width


def test_names_use_kernel_vocabulary():
    assert regs.reg_name(0x6030000000160003) == "KVM_REG_ARM_VENDOR_HYP_BMAP_2"
    assert regs.short_name(0x6030000000140000) == "PSCI_VERSION"
    assert regs.reg_name(regs.feat_reg(9, 2048)) == "FW_FEAT_BMAP(9, U2048)"


def test_smccc_function_ids_match_den0028():
    assert smccc.function_id("std-hyp", 0x20, smc64=True) == 0xC5000020  # PV_TIME_FEATURES
    assert smccc.function_id("vendor-hyp", 1) == 0x86000001  # PTP
    assert smccc.full_bitmap_bytes() == 16384  # Marc's "16kB worth of zeroes"
