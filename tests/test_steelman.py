"""The thread's proposals as their authors wrote them (issue 12, item 1).

``wide:writes=invalidate`` is Marc's wide registers as the vehicle of
invalidate-on-write; ``full-bitmap:spaces=all`` is the 16 kB bitmap read as
also covering OEN 4.  Each test checks a consequence of the reading that a
wrong layout or write rule would break.
"""

from __future__ import annotations

import pytest

from hcsim.evaluation.backends import evaluate
from hcsim.model.history import from_dict
from hcsim.model.regs import decode
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import REGISTRY
from hcsim.model.vmm import parse as parse_vmm


def outcomes(h, spec, vmm):
    return [(m.outcome, m.gained, m.lost) for m in
            evaluate(h, parse_strategy(spec), parse_vmm(vmm), backend="spec").migrations()]


@pytest.mark.parametrize("vmm", sorted(REGISTRY))
def test_marc_wide_of_64_bits_is_invalidate_on_write(linux, vmm):
    """At W=64 Marc's wide registers are exactly RFC v1's invalidate-on-write."""
    assert outcomes(linux, "wide:writes=invalidate,width=64", vmm) == \
        outcomes(linux, "invalidate-on-write", vmm)


@pytest.mark.parametrize("width", [128, 256, 2048])
def test_marc_wide_keeps_one_register_per_space_on_linux(linux, width):
    """The vendor space's second 64-bit register (BMAP_2, v6.15) becomes bits
    64.. of the one wide register: the list never grows after v5.19."""
    layout = parse_strategy(f"wide:writes=invalidate,width={width}").layout(linux)
    assert [decode(r.id).index for r in layout.regs] == [0, 1, 2]
    assert {r.listed_from for r in layout.regs} == {linux.registers_from}
    assert all(r.width == width and r.strict for r in layout.regs)
    names = [s.name for s in linux.services]
    impl = layout.bits[names.index("DISCOVER_IMPL_VER")]
    assert impl == ((layout.position[layout.regs[2].id], 64),)


def test_marc_wide_removes_the_v6_15_count_refusal(linux):
    """Under QEMU, v6.15 -> v6.14 is refused upstream (a new register) but
    not with one wide register per space."""
    n = len(linux.releases)
    i, j = linux.index("v6.15"), linux.index("v6.14")
    up = outcomes(linux, "upstream", "qemu")[i * n + j]
    wide = outcomes(linux, "wide:writes=invalidate", "qemu")[i * n + j]
    assert up[0] == "refused"
    assert wide[0] != "refused"


def test_full_bitmap_over_all_spaces_covers_a_new_std_service():
    """A std (OEN 4) service added after the bitmaps exist: Marc's two spaces
    leave it uncovered, so a guest migrated forward gains it; covering OEN 4
    too, the source's zero bits hide it."""
    h = from_dict({"name": "std-late", "releases": ["r0", "r1", "r2"],
                   "registers_from": "r0", "firmware": [],
                   "service": [{"name": "PV_TIME", "space": "std-hyp", "introduced": "r0"},
                               {"name": "NEW_STD", "space": "std", "introduced": "r2"}]})
    fwd = 1 * 3 + 2     # r1 -> r2
    assert outcomes(h, "full-bitmap", "qemu")[fwd] == \
        ("gained", frozenset({"NEW_STD"}), frozenset())
    assert outcomes(h, "full-bitmap:spaces=all", "qemu")[fwd][0] == "preserved"
    layout = parse_strategy("full-bitmap:spaces=all,width=2048").layout(h)
    assert len(layout.regs) == 3 * 65536 // 2048


def test_steelman_parameters_are_validated():
    from hcsim.errors import InputError
    for bad in ("wide:writes=iow", "full-bitmap:spaces=std"):
        with pytest.raises(InputError, match="must be one of"):
            parse_strategy(bad)
