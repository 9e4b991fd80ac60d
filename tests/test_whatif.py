"""``hcsim what-if``: a hypothetical release against its predecessor.

The reference is built independently: the Linux history file's own text,
edited as a reviewer would edit it (a release name inserted, a
``[[service]]`` table appended), loaded, and run through ``matrix``.
"""

from __future__ import annotations

import csv
import io

import pytest
from test_cli_errors import assert_one_line_error, run

from hcsim.analyses import whatif
from hcsim.evaluation.backends import evaluate
from hcsim.model import history as history_mod
from hcsim.model.strategies import parse as parse_strategy
from hcsim.model.vmm import parse as parse_vmm

BMAP_2 = "0x6030000000160003"


def edited_text(after: str, name: str, tables: str) -> str:
    text = history_mod.data_path("linux-upstream.toml").read_text()
    old = f'"{after}",'
    if old not in text:
        old = f'"{after}"'
    assert text.count(old) == 1
    return text.replace(old, f'{old.rstrip(",")}, "{name}",', 1) + "\n" + tables


@pytest.mark.parametrize("after, service, table", [
    ("v7.3", "NEW:vendor-hyp",
     '[[service]]\nname = "NEW"\nspace = "vendor-hyp"\nintroduced = "v7.4-rc"\n'),
    ("v6.14", "NEW:std:off:functions=3",
     '[[service]]\nname = "NEW"\nspace = "std"\nfunctions = 3\ndefault = "off"\n'
     'introduced = "v7.4-rc"\n'),
])
@pytest.mark.parametrize("vmm", ["qemu", "firecracker", "crosvm"])
def test_what_if_equals_matrix_on_the_edited_file(linux, after, service, table, vmm):
    strategy, policy = parse_strategy("upstream"), parse_vmm(vmm)
    edited, rows = whatif.what_if(linux, "v7.4-rc", strategy, [policy], after,
                                  (whatif.NewService.parse(service),))
    ref = history_mod.loads(edited_text(after, "v7.4-rc", table),
                            origin="edited").with_registers(linux.registers)
    assert ref.releases == edited.releases
    n = len(ref.releases)
    grid = {(m.src, m.dst): m for m in
            evaluate(ref, strategy, policy, backend="spec").migrations()}
    new = ref.index("v7.4-rc")
    assert len(rows) == 2 * (n - 1)
    for r in rows:
        x = ref.index(r["partner"])
        was, now = (((x, new - 1), (x, new)) if r["direction"] == "into"
                    else ((new - 1, x), (new, x)))
        assert r["before"] == grid[was].outcome, r
        assert r["after"] == grid[now].outcome, r
        assert r["lost"] == ";".join(sorted(grid[now].lost))
        assert r["gained"] == ";".join(sorted(grid[now].gained))
        assert r["detail"] == grid[now].detail
        assert r["blame"] == (grid[now].cause.blame if grid[now].cause else "")
        assert r["changed"] == ((grid[was].outcome, grid[was].gained, grid[was].lost)
                                != (grid[now].outcome, grid[now].gained, grid[now].lost))


def test_the_v6_15_patch_as_a_reviewer_could_have_run_it():
    """BMAP_2 (c0000e58c74e) on v6.14: backward migration out of the new
    release breaks under QEMU (count) and Firecracker (ENOENT), not crosvm."""
    code, out, err = run(["what-if", "--history", "linux", "--until", "v6.14",
                          "--add-release", "v6.15-rc", "--format", "csv",
                          "--service", f"DISCOVER_IMPL_VER:vendor-hyp:off:register={BMAP_2}:bit=0",
                          "--service", f"DISCOVER_IMPL_CPUS:vendor-hyp:off:register={BMAP_2}:bit=1"])
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    changed = {(r["vmm"], r["direction"], r["partner"]): r for r in rows if r["changed"] == "yes"}
    assert ("qemu", "out", "v6.14") in changed
    assert changed["qemu", "out", "v6.14"]["after"] == "refused"
    assert "cpreg_vmstate_array_len" in changed["qemu", "out", "v6.14"]["detail"]
    assert changed["qemu", "out", "v6.14"]["blame"] == "hypercall"
    assert changed["firecracker", "out", "v6.14"]["detail"].startswith("ENOENT")
    assert not [k for k in changed if k[0] == "crosvm" or k[1] == "into"]


def test_opt_in_breaks_less_than_default_on(linux):
    rows = {}
    for spec in ("NEW:vendor-hyp", "NEW:vendor-hyp:off"):
        _, got = whatif.what_if(linux, "v7.4-rc", parse_strategy("upstream"),
                                [parse_vmm("qemu")], None, (whatif.NewService.parse(spec),))
        rows[spec] = sum(r["after"] == "refused" for r in got)
    assert rows["NEW:vendor-hyp:off"] < rows["NEW:vendor-hyp"]


@pytest.mark.parametrize("extra, fragment", [
    (["--service", "X:oen7"], "unknown space 'oen7'"),
    (["--service", "PTP:vendor-hyp"], "duplicate service name"),
    (["--service", "X:std:functions=0"], "functions must be an integer"),
    (["--service", "X:std:functions=x"], "functions must be an integer"),
    (["--service", "X:std:colour=1"], "unknown field 'colour=1'"),
    (["--service", "X:std:off:off"], "given twice"),
    (["--service", "X"], "expected NAME:SPACE"),
    (["--service", f"X:std:register={BMAP_2}:bit=5"], "pinned by space 'vendor-hyp'"),
    (["--service", "X:vendor-hyp:register=0x6030000000160000:bit=5"], "belongs to another space"),
    (["--service", "X:vendor-hyp:register=0x6030000000160002:bit=1"], "already pinned by 'PTP'"),
    (["--service", "X:std", "--after", "v9.9"], "unknown release 'v9.9'"),
    (["--service", "X:std", "--add-release", "v6.1"], "already has a release 'v6.1'"),
    (["--service", "X:std", "--add-release", "a b"], "without spaces"),
    ([], "at least one --service"),
    (["--service", "X:std", "--vmm", "qemu9"], "unknown VMM"),
])
def test_bad_what_if_input_is_one_line(extra, fragment, tmp_path):
    out = tmp_path / "out.txt"
    argv = ["what-if", "--history", "linux", "--add-release", "v7.4-rc",
            "--output", str(out), *extra]
    if argv.count("--add-release") == 2:
        del argv[3:5]
    assert_one_line_error(*run(argv), fragment)
    assert not out.exists()


def test_text_fits_an_email():
    code, out, _ = run(["what-if", "--history", "linux", "--add-release", "v7.4-rc",
                        "--service", "NEW:vendor-hyp", "--service", "N2:std:off"])
    assert code == 0
    assert max(map(len, out.splitlines())) <= 72


def test_api_equals_the_csv(linux_whole):
    import hcsim
    frame = hcsim.what_if(linux_whole, "v7.4-rc", ["NEW:vendor-hyp"], vmms=["qemu"])
    code, out, _ = run(["what-if", "--history", "linux", "--add-release", "v7.4-rc",
                        "--service", "NEW:vendor-hyp", "--vmm", "qemu", "--format", "csv"])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(frame)
    for row, (_, got) in zip(rows, frame.iterrows()):
        assert row["partner"] == got["partner"] and row["after"] == got["after"]
        assert row["changed"] == ("yes" if got["changed"] else "no")
