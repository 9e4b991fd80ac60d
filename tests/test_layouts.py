"""Layout assumptions of a history: lazy/eager space registers, dense/function-numbered bits."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_cli_errors import assert_one_line_error, run
from test_engine_differential import assert_same, configurations, examples, histories

import hcsim
from hcsim.model.history import BITS, SPACE_REGISTERS, dumps, from_dict, loads
from hcsim.model.regs import feat_reg
from hcsim.model.strategies import parse as parse_strategy

LAYOUTS = [(r, b) for r in SPACE_REGISTERS for b in BITS]
#: Strategies whose layout the assumptions touch, and one they do not.
SPECS = ["upstream", "invalidate-on-write", "raz-wi", "raz-einval", "wide:writes=invalidate",
         "wide:width=64"]


def _doc(services, **extra) -> dict:
    return {"name": "case", "releases": ["r0", "r1", "r2", "r3"], "registers_from": "r1",
            "service": services, **extra}


def _listed(h, spec="upstream") -> dict[int, int]:
    """Register index -> first release listing it."""
    return {r.id & 0xFFFF: r.listed_from for r in parse_strategy(spec).layout(h).regs}


def _bit(h, name, spec="upstream") -> tuple[int, int]:
    lay = parse_strategy(spec).layout(h)
    k = [s.name for s in h.services].index(name)
    (pos, bit), = lay.bits[k]
    return lay.regs[pos].id & 0xFFFF, bit


def test_defaults_are_todays_histories_and_toml():
    h = hcsim.generate(seed=5)
    assert (h.space_registers, h.bits) == ("lazy", "dense")
    assert h == hcsim.generate(seed=5, space_registers="lazy", bits="dense")
    text = dumps(h)
    assert "space_registers" not in text and "bits =" not in text
    assert "--space-registers" not in h.source and "--bits" not in h.source


def test_the_assumptions_change_no_draw():
    a = hcsim.generate(seed=9, rate=1.0)
    b = hcsim.generate(seed=9, rate=1.0, space_registers="eager", bits="function-numbered")
    assert a.services == b.services and a.registers_from == b.registers_from
    assert (b.space_registers, b.bits) == ("eager", "function-numbered")
    assert loads(dumps(b)) == b


def test_eager_lists_every_space_register_from_registers_from():
    services = [{"name": "A", "space": "std-hyp", "introduced": "r0"},
                {"name": "B", "space": "vendor-hyp", "introduced": "r3"}]
    lazy = from_dict(_doc(services))
    eager = from_dict(_doc(services, space_registers="eager"))
    assert _listed(lazy) == {1: 1, 2: 3}
    assert _listed(eager) == {0: 1, 1: 1, 2: 1}
    # reserved ranges are listed from registers_from either way
    assert _listed(lazy, "raz-wi") == _listed(eager, "raz-wi")
    # an empty eager register is 0 and strict: a new VM reads 0, a write of 1 is refused
    values = hcsim.registers(eager, "upstream", "r1")
    assert values[feat_reg(0)] == 0 and values[feat_reg(2)] == 0


def test_eager_changes_nothing_on_linux(linux):
    """Linux listed all three bitmaps at v5.19 because every space had a service."""
    eager = replace(linux, space_registers="eager")
    for spec in ("upstream", "invalidate-on-write"):
        assert _listed(linux, spec) == _listed(eager, spec)


def test_eager_upstream_refuses_backward_across_a_late_space_under_qemu():
    """Lazy: the register appears with the space's first service, so QEMU's count check
    refuses going back; eager: it was listed all along (value 0 before the service)."""
    services = [{"name": "A", "space": "std-hyp", "introduced": "r0"},
                {"name": "B", "space": "vendor-hyp", "introduced": "r3", "default": "off"}]
    lazy = hcsim.migrate(from_dict(_doc(services)), "upstream", "qemu", "r3", "r2")
    eager = hcsim.migrate(from_dict(_doc(services, space_registers="eager")),
                          "upstream", "qemu", "r3", "r2")
    assert lazy.outcome == "refused" and lazy.cause.kind == "count"
    assert eager.outcome == "preserved"


def test_function_numbered_bits_follow_function_numbers():
    """FUNC_FEAT (function 0), PTP (1), 62 functions without a bitmap use, then one more
    service: function 64 is bit 0 of a second vendor register, as VENDOR_HYP_BMAP_2."""
    services = [{"name": "FUNC_FEAT", "space": "vendor-hyp", "introduced": "r0"},
                {"name": "PTP", "space": "vendor-hyp", "introduced": "r0"},
                {"name": "BIG", "space": "vendor-hyp", "functions": 62, "introduced": "r1"},
                {"name": "IMPL", "space": "vendor-hyp", "introduced": "r2", "default": "off"}]
    dense = from_dict(_doc(services))
    numbered = from_dict(_doc(services, bits="function-numbered"))
    assert [_bit(dense, n) for n in ("PTP", "BIG", "IMPL")] == [(2, 1), (2, 2), (2, 3)]
    assert [_bit(numbered, n) for n in ("PTP", "BIG", "IMPL")] == [(2, 1), (2, 2), (3, 0)]
    assert _listed(numbered) == {2: 1, 3: 2}
    assert parse_strategy("upstream").layout(numbered).exhaustion() == 2
    assert parse_strategy("upstream").layout(dense).exhaustion() is None


def test_function_numbered_reserved_ranges_fill_by_function():
    services = [{"name": f"S{k}", "space": "std-hyp", "functions": 3, "introduced": "r2"}
                for k in range(30)]
    dense = from_dict(_doc(services))
    numbered = from_dict(_doc(services, bits="function-numbered"))
    # 30 services: one register dense; 90 function numbers: two
    assert parse_strategy("raz-einval:ranges=1").layout(dense).exhaustion() is None
    assert parse_strategy("raz-einval:ranges=1").layout(numbered).exhaustion() == 2
    assert _bit(numbered, "S22", "raz-wi") == (1, 2)      # function slot 66


def test_function_numbered_skips_a_register_no_bit_falls_in():
    services = [{"name": "HUGE", "space": "std", "functions": 200, "introduced": "r0"},
                {"name": "NEXT", "space": "std", "introduced": "r2"}]
    h = from_dict(_doc(services, bits="function-numbered"))
    assert _bit(h, "NEXT", "raz-wi:ranges=1") == (3, 8)      # slot 200 = 3 * 64 + 8
    assert sorted(_listed(h, "raz-wi:ranges=1")) == [0, 3]
    assert _bit(h, "NEXT") == (3, 8)                         # upstream: the std chain's 4th


def test_function_numbered_slot_pinned_by_another_is_one_line_error():
    services = [{"name": "A", "space": "vendor-hyp", "introduced": "r0"},
                {"name": "P", "space": "vendor-hyp", "introduced": "r0",
                 "register": "0x6030000000160002", "bit": 0}]
    h = from_dict(_doc(services, bits="function-numbered"))
    with pytest.raises(hcsim.InputError, match="pinned by 'P'") as e:
        parse_strategy("upstream").layout(h)
    assert "\n" not in str(e.value)


def test_pins_keep_their_place_on_linux(linux):
    numbered = replace(linux, bits="function-numbered")
    for spec in ("upstream", "invalidate-on-write"):
        a, b = parse_strategy(spec).layout(linux), parse_strategy(spec).layout(numbered)
        assert a.regs == b.regs and a.bits == b.bits


@pytest.mark.parametrize("key,value", [("space_registers", "sometimes"), ("bits", 3)])
def test_bad_layout_value_in_a_history_is_one_line(key, value):
    with pytest.raises(hcsim.InputError, match=key) as e:
        from_dict(_doc([], **{key: value}))
    assert "\n" not in str(e.value)


def test_generate_cli_writes_and_refuses_the_options(tmp_path):
    out = tmp_path / "h.toml"
    code, _, err = run(["generate", "--releases", "8", "--rate", "1", "--space-registers",
                        "eager", "--bits", "function-numbered", "--output", str(out)])
    assert code == 0, err
    h = hcsim.load(str(out))
    assert (h.space_registers, h.bits) == ("eager", "function-numbered")
    assert h == hcsim.generate(releases=8, rate=1.0, space_registers="eager",
                               bits="function-numbered")
    for argv, fragment in ((["--bits", "sparse"], "--bits"),
                           (["--space-registers", "x"], "--space-registers")):
        code, out_, err = run(["generate", *argv])
        assert_one_line_error(code, out_, err, fragment)


def test_sweep_takes_the_options_and_names_them():
    df = hcsim.sweep(2, strategies=["upstream"], vmms=["qemu"], jobs=1, progress=False,
                     releases=10, rate=2.0, bits="function-numbered")
    assert set(df["bits"]) == {"function-numbered"} and "space_registers" not in df
    plain = hcsim.sweep(2, strategies=["upstream"], vmms=["qemu"], jobs=1, progress=False,
                        releases=10, rate=2.0)
    assert "bits" not in plain


def test_sweep_cli_option_is_one_line_on_a_bad_value():
    code, out, err = run(["sweep", "--histories", "1", "--bits", "x"])
    assert_one_line_error(code, out, err, "--bits")


# -- engine = spec on the new layouts ---------------------------------------------------

@examples(60)
@given(histories(), st.sampled_from(LAYOUTS), st.sampled_from(SPECS), st.data())
def test_engine_equals_spec_on_every_layout(h, layout, spec, data):
    h = replace(h, space_registers=layout[0], bits=layout[1])
    try:
        parse_strategy(spec).layout(h)
    except hcsim.InputError:        # a function-numbered slot pinned by another service
        return
    assert_same(h, [spec], configurations(data.draw, h))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_engine_equals_spec_on_synthetic_layouts(layout):
    h = hcsim.generate(releases=12, rate=2.0, functions=3.0, seed=4,
                       space_registers=layout[0], bits=layout[1])
    assert_same(h, SPECS, [frozenset()], vmms=("qemu", "firecracker", "zero-unknown"))
