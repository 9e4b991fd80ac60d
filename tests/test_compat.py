"""``hcsim compat``: compat lists under which QEMU passes its list checks.

The feed-back test is the contract: the lists, given back as
``--vmm qemu-compat:hidden=...,safe-missing=...``, make ``hcsim matrix`` over
those releases free of register-list refusals, and each id is needed.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib

import pytest
from test_cli_errors import assert_one_line_error, run

from hcsim.analyses import compat
from hcsim.model.strategies import parse as parse_strategy

LIST_CAUSES = ("count ", "unknown ")


def lists(releases: str, *extra: str) -> tuple[list[str], list[str]]:
    code, out, err = run(["compat", "--history", "linux", "--releases", releases,
                          "--format", "qemu", *extra])
    assert code == 0, err
    props = dict(line.split("=", 1) for line in out.splitlines())
    split = [v.split(",") if v else [] for v in
             (props["x-mig-hidden-regs"], props["x-mig-safe-missing-regs"])]
    return split[0], split[1]


def list_refusals(releases: list[str], hidden, safe, *extra) -> list[tuple[str, str, str]]:
    vmm = f"qemu-compat:hidden={';'.join(hidden)},safe-missing={';'.join(safe)}"
    code, out, err = run(["matrix", "--history", "linux", "--strategy", "upstream",
                          "--vmm", vmm, "--format", "csv", *extra])
    assert code == 0, err
    return [(r["src"], r["dst"], r["detail"]) for r in csv.DictReader(io.StringIO(out))
            if r["src"] in releases and r["dst"] in releases
            and r["outcome"] == "refused" and r["detail"].startswith(LIST_CAUSES)]


@pytest.mark.parametrize("releases, extra", [
    ("v6.1,v6.6,v6.12,v6.16", ("--since", "v6.1")),
    ("v6.1,v6.16", ("--since", "v6.1", "--features", "pmu")),
    ("v5.10,v6.12,v7.3", ("--since", "v5.10", "--host", "max")),
])
def test_the_lists_fed_back_clear_every_list_refusal(linux, releases, extra):
    """``matrix`` (``--since`` only shortens it) with the lists given back."""
    chosen = releases.split(",")
    assert list_refusals(chosen, [], [], *extra), "nothing to clear: the test could not fail"
    hidden, safe = lists(releases, *extra[2:])
    assert hidden == []
    assert list_refusals(chosen, hidden, safe, *extra) == []


def test_every_id_of_the_lists_is_needed(linux):
    """Irreducible: without any one id some pair is refused by the list checks."""
    strategy = parse_strategy("upstream")
    releases = compat.parse_releases(linux, "v6.1,v6.12,v6.16")
    found = compat.find(linux, strategy, releases)
    assert found.safe_missing
    for rid in found.safe_missing:
        vmm = compat.compat_vmm((), set(found.safe_missing) - {rid})
        kinds = {k for *_, k, _ in compat.list_refusals(linux, strategy, vmm, releases)}
        assert kinds & set(compat.LIST_KINDS), compat.name(rid)


def test_ranges_and_the_v6_13_break(linux):
    """TCR2_EL1/PIRE0_EL1/PIR_EL1 (v6.12 only) are needed across v6.12..v6.13;
    VENDOR_HYP_BMAP_2 across v6.14..v6.15."""
    _, safe = lists("v6.12..v6.15")
    names = {compat.name(int(x, 16)) for x in safe}
    assert {"TCR2_EL1", "PIRE0_EL1", "PIR_EL1", "VENDOR_HYP_BMAP_2"} <= names


def test_marks_say_which_ids_carry_state(linux):
    found = compat.find(linux, parse_strategy("upstream"),
                        compat.parse_releases(linux, "v6.14,v6.15"))
    marks = {compat.name(r): m for r, m in found.marks.items()}
    assert marks["VENDOR_HYP_BMAP_2"].startswith("zero at reset")
    on = compat.find(linux, parse_strategy("upstream"),
                     compat.parse_releases(linux, "v5.18,v5.19"))
    assert any(m.startswith("reset value 0x") for m in on.marks.values())


def test_toml_and_json_carry_the_same_lists():
    _, safe = lists("v6.1,v6.16")
    code, out, _ = run(["compat", "--history", "linux", "--releases", "v6.1,v6.16",
                        "--format", "toml"])
    assert code == 0 and tomllib.loads(out)["safe_missing"] == safe
    code, out, _ = run(["compat", "--history", "linux", "--releases", "v6.1,v6.16",
                        "--format", "json"])
    doc = json.loads(out)
    assert [x["id"] for x in doc["safe_missing"]] == safe
    assert doc["still_refused"][0]["cause"] == "EINVAL on KVM_REG_ARM_PSCI_VERSION"


def test_text_fits_an_email():
    code, out, _ = run(["compat", "--history", "linux", "--releases", "v6.10..v6.16"])
    assert code == 0 and max(map(len, out.splitlines())) <= 72


@pytest.mark.parametrize("extra, fragment", [
    (["--releases", "v6.1"], "at least two releases"),
    (["--releases", "v6.1,v9.9"], "unknown release 'v9.9'"),
    (["--releases", "v6.16..v6.1"], "runs backwards"),
    (["--releases", "v6.1,,v6.2"], "empty release name"),
    (["--releases", "v6.1,v6.2", "--features", "sve9"], "feature"),
    (["--releases", "v6.1,v6.2", "--format", "yaml"], "unknown format 'yaml'"),
    (["--releases", "v6.1,v6.2", "--strategy", "nope"], "unknown strategy"),
])
def test_bad_compat_input_is_one_line(extra, fragment, tmp_path):
    out = tmp_path / "lists.toml"
    argv = ["compat", "--history", "linux", "--output", str(out), *extra]
    assert_one_line_error(*run(argv), fragment)
    assert not out.exists()
