"""SMCCC function ids and owner spaces (Arm DEN0028).

Bit 31 fast call, bit 30 SMC64, bits 29:24 the owning entity number (OEN),
bits 15:0 the function number.  hcsim models three owner spaces.
"""

from __future__ import annotations

#: Owner spaces hcsim models, with their OEN.
SPACES = {"std": 4, "std-hyp": 5, "vendor-hyp": 6}

#: Function numbers per owner space (16 bits).
FUNCTIONS_PER_SPACE = 1 << 16

#: The two hypervisor spaces a full bitmap covers (Marc's "16kB").
HYP_SPACES = ("std-hyp", "vendor-hyp")

SMCCC_FAST_CALL = 1 << 31
SMCCC_SMC64 = 1 << 30
OEN_SHIFT = 24


def function_id(space: str, number: int, smc64: bool = False) -> int:
    """The fast-call function id of ``number`` in ``space``."""
    return (SMCCC_FAST_CALL | (SMCCC_SMC64 if smc64 else 0)
            | SPACES[space] << OEN_SHIFT | number)


def full_bitmap_bytes() -> int:
    """One bit per function number of both hypervisor spaces, in bytes."""
    return len(HYP_SPACES) * FUNCTIONS_PER_SPACE // 8
