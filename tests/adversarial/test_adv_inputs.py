"""Hostile input files and values through the command line.

Three kinds of cases, each asserting the contract of ``hc_contract``:

* scripted: one hostile file or option per case (deep nesting, endless or
  special files, values past U64, wrong types deep in a file, counts past
  their cap, ...), each with the fragment its one error line must contain;
* hypothesis, structural: a valid history, inventory, plan or probe file
  with one field replaced by a hostile value (wrong type, huge, negative,
  empty, control characters, deep nesting), a key deleted or an unknown key
  added;
* hypothesis, textual: a valid file with random byte edits.

A mutated file may still be valid: then the command must succeed.  Either
way: no traceback, exit 0 (1 for probe mismatches) or exactly one
``hcsim: error:`` line with exit 2 and every output untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib

import pytest
from hc_contract import FLEET, LINUX_PROBE, REPO, Snapshot, assert_clean, check, children, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FOUR = (REPO / "tests" / "data" / "four.toml").read_text()

#: A small history using every section of DESIGN.md section 6 and the extensions.
HISTORY = FOUR + """
[[firmware]]
name = "WA1"
id = "0x6030000000140001"
introduced = "r1"
reset = "0x1"
accepts = ["0x0", "0x1"]
on_write = "check"
hosts = { a72 = { reset = "0x0", accepts = ["0x0"] } }
changes = [{ release = "r2", reset = "0x1", accepts = ["0x1"], stores = "0x0" }]

[[stable]]
name = "r1-stable"
base = "r1"
backports = ["WA1"]
backport_changes = [{ name = "WA1", release = "r2" }]
"""

INVENTORY = """name = "small"
[[group]]
name = "a"
hosts = 10
kernel = "v6.1"
cpu = "neoverse-n1"
vmm = "qemu"
[[group]]
name = "b"
hosts = 5
kernel = "6.1.0-56-arm64"
vmm = "qemu"
"""

PLAN = """name = "p"
start = 2026-01-05
end = 2026-03-30
placement = "same-release"
[guests]
count = 40
vcpus = [2, 4]
initial = 0.5
[[rollout]]
label = "up"
to = "v6.6"
from = "v6.1"
groups = ["a", "b"]
start = 2026-01-12
waves = 3
every = 7
"""

SETTINGS = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------
# TOML writing (inline tables: any structure, any key, one line per key)

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_doc(doc: dict) -> str:
    return "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items()) + "\n"


def paths(doc, prefix=()):
    """Every (path) to a value below the top level."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for k, v in items:
        yield (*prefix, k)
        if isinstance(v, (dict, list)):
            yield from paths(v, (*prefix, k))


def deep(n: int):
    value: object = 1
    for _ in range(n):
        value = [value]
    return value


HOSTILE = st.one_of(
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.sampled_from([0, -1, 1 << 64, (1 << 64) - 1, 1 << 63, 10**30, 65536, 513, 10**8]),
    st.text(max_size=12),
    st.sampled_from(["", "\x00", "a\nb", "\x1b[31m", "0x" + "f" * 17, "0x10000000000000000",
                     "-0x1", "r0", "v6.1", "max", "qemu", "upstream", "std", "on", "check"]),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.dates(),
    st.just(deep(40)),
    st.just([[["x"]]]),
)


def mutate(doc: dict, data) -> dict:
    """``doc`` with one value replaced, a key deleted, or an unknown key added."""
    doc = json.loads(json.dumps(doc, default=str))      # a deep copy (dates become strings)
    choices = list(paths(doc))
    path = data.draw(st.sampled_from(choices), label="path")
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    action = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]), label="action")
    if action == "replace":
        parent[path[-1]] = data.draw(HOSTILE, label="value")
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=5), label="key")] = data.draw(HOSTILE)
    else:
        parent.append(data.draw(HOSTILE, label="value"))
    return doc


def _dates(doc):
    """Put TOML dates back where json turned them into strings (plan start/end)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, str) and len(v) == 10 and v[4] == "-" and k in ("start", "end"):
                try:
                    doc[k] = dt.date.fromisoformat(v)
                except ValueError:
                    pass
            else:
                _dates(v)
    elif isinstance(doc, list):
        for v in doc:
            _dates(v)
    return doc


BYTE_EDITS = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["insert", "delete", "replace"]),
                                st.binary(min_size=1, max_size=4)
                                | st.sampled_from([b"[", b"{", b"]", b"\"", b"\n", b"=", b"\xff",
                                                   b"\x00", b"#", b"[[", b"0x", b"9" * 30])),
                      min_size=1, max_size=4)


def edit_bytes(data: bytes, edits) -> bytes:
    for where, op, chunk in edits:
        i = int(where * len(data))
        if op == "insert":
            data = data[:i] + chunk + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + len(chunk):]
        else:
            data = data[:i] + chunk + data[i + len(chunk):]
    return data


# --------------------------------------------------------------------------
# The commands a mutated file goes through

def _history_cmd(tmp_path, text: bytes):
    h = tmp_path / "h.toml"
    h.write_bytes(text)
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    before = children()
    snap = Snapshot(tmp_path)
    code, o, e = run(["compare", "--history", h, "--vmm", "qemu", "--format", "csv",
                      "--output", out])
    assert_clean(code, o, e)
    if code != 0:
        snap.assert_unchanged()
    assert children() <= before


def _inventory_cmd(tmp_path, text: bytes, suffix=".toml"):
    inv = tmp_path / f"inv{suffix}"
    inv.write_bytes(text)
    out = tmp_path / "out.txt"
    out.write_text("previous\n")
    snap = Snapshot(tmp_path)
    code, o, e = run(["baseline", "--history", "linux", "--strategy", "upstream", "--vmm",
                      "qemu", "--hosts", inv, "--output", out])
    assert_clean(code, o, e)
    if code != 0:
        snap.assert_unchanged()


def _plan_cmd(tmp_path, text: bytes):
    inv = tmp_path / "inv.toml"
    inv.write_text(INVENTORY)
    plan = tmp_path / "plan.toml"
    plan.write_bytes(text)
    out = tmp_path / "out.txt"
    out.write_text("previous\n")
    snap = Snapshot(tmp_path)
    code, o, e = run(["fleet", "--history", "linux", "--inventory", inv, "--plan", plan,
                      "--config", "default", "--output", out])
    assert_clean(code, o, e)
    if code != 0:
        snap.assert_unchanged()


def _probe_cmd(tmp_path, text: bytes):
    probe = tmp_path / "5.10.0-32-arm64.vhe.jsonl"
    probe.write_bytes(text)
    code, o, e = run(["probe-replay", probe, "--history", "linux"])
    assert_clean(code, o, e, allowed=(0, 1, 2))
    if code == 2:
        assert str(probe) in e, e        # a probe error names the file (and the line)


# --------------------------------------------------------------------------
# hypothesis: structural mutations

@SETTINGS
@given(data=st.data())
def test_mutated_history(tmp_path_factory, data):
    doc = mutate(tomllib.loads(HISTORY), data)
    _history_cmd(tmp_path_factory.mktemp("h"), toml_doc(doc).encode())


@SETTINGS
@given(data=st.data())
def test_mutated_inventory(tmp_path_factory, data):
    doc = mutate(tomllib.loads(INVENTORY), data)
    _inventory_cmd(tmp_path_factory.mktemp("i"), toml_doc(doc).encode())


@settings(SETTINGS, max_examples=25)
@given(data=st.data())
def test_mutated_plan(tmp_path_factory, data):
    doc = _dates(mutate(tomllib.loads(PLAN), data))
    _plan_cmd(tmp_path_factory.mktemp("p"), toml_doc(doc).encode())


PROBE_LINES = LINUX_PROBE.read_text().splitlines()


@SETTINGS
@given(data=st.data())
def test_mutated_probe(tmp_path_factory, data):
    lines = list(PROBE_LINES)
    n = data.draw(st.integers(0, len(lines) - 1), label="line")
    rec = json.loads(lines[n])
    rec = mutate(rec, data)
    lines[n] = json.dumps(rec, default=str)
    _probe_cmd(tmp_path_factory.mktemp("r"), ("\n".join(lines) + "\n").encode())


# hypothesis: byte edits

@settings(SETTINGS, max_examples=20)
@given(edits=BYTE_EDITS)
def test_byte_edited_history(tmp_path_factory, edits):
    _history_cmd(tmp_path_factory.mktemp("hb"), edit_bytes(HISTORY.encode(), edits))


@settings(SETTINGS, max_examples=20)
@given(edits=BYTE_EDITS)
def test_byte_edited_inventory_csv(tmp_path_factory, edits):
    text = (FLEET / "inventory.csv").read_bytes()
    _inventory_cmd(tmp_path_factory.mktemp("ic"), edit_bytes(text, edits), ".csv")


@settings(SETTINGS, max_examples=20)
@given(edits=BYTE_EDITS)
def test_byte_edited_plan(tmp_path_factory, edits):
    _plan_cmd(tmp_path_factory.mktemp("pb"), edit_bytes(PLAN.encode(), edits))


@settings(SETTINGS, max_examples=20)
@given(edits=BYTE_EDITS)
def test_byte_edited_probe(tmp_path_factory, edits):
    _probe_cmd(tmp_path_factory.mktemp("rb"), edit_bytes(LINUX_PROBE.read_bytes(), edits))


# --------------------------------------------------------------------------
# Scripted hostile files: (file text, fragment of the error line)

def _hist(extra: str = "", replace: tuple[str, str] | None = None) -> str:
    text = HISTORY if replace is None else HISTORY.replace(*replace, 1)
    return text + extra


HOSTILE_HISTORIES = {
    "deep_array": ("a = " + "[" * 10_000 + "]" * 10_000, "nested more than 32 levels"),
    "deep_inline": ("a = " + "{b = " * 3_000 + "1" + "}" * 3_000, "nested more than 32 levels"),
    "deep_dotted": (".".join(["k"] * 3_000) + " = 1", "nested more than 32 levels"),
    "huge_int": ("releases = [\"r0\"]\nx = " + "9" * 5000, "malformed TOML"),
    "not_utf8": ("releases = [\"r\xff\"]".encode("latin-1"), "not a UTF-8"),
    "empty_name": (_hist(replace=('name = "four"', 'name = ""')), "name must be a non-empty"),
    "ctrl_name": (_hist(replace=('name = "four"', 'name = "a\\u001b[2J"')), "control character"),
    "ctrl_release": (_hist(replace=('"r3"]', '"r3\\n"]')), "control character"),
    "reset_past_u64": (_hist(replace=('reset = "0x10000"', 'reset = "0x10000000000000000"')),
                       "does not fit in 64 bits"),
    "accepts_past_u64": (_hist(replace=('"0x2", "0x10000"]', '"0x2", "0x10000", 18446744073709551616]')),
                         "does not fit in 64 bits"),
    "id_past_u64": (_hist(replace=('id = "0x6030000000140000"', 'id = "0x16030000000140000"')),
                    "does not fit in 64 bits"),
    "long_hex": (_hist(replace=('reset = "0x10000"', 'reset = "0x' + "0" * 5000 + '1"')),
                 "must be a non-negative number"),
    "space_overflow": (_hist(replace=("functions = 2", "functions = 65536")), "overflows"),
    "space_overflow_sum": (_hist("\n[[service]]\nname = \"BIG\"\nspace = \"std-hyp\"\n"
                                 "functions = 65535\nintroduced = \"r1\"\n"), "overflows"),
    "backports_list": (_hist(replace=('backports = ["WA1"]', 'backports = [["WA1"]]')),
                       "backports must be a list"),
    "backport_changes_name_list": (_hist(replace=('{ name = "WA1", release', '{ name = ["WA1"], release')),
                                   "name must be a non-empty string"),
    "backport_changes_table": (_hist(replace=('backport_changes = [', 'backport_changes = ["x", ')),
                               "expected a table"),
    "host_list": ('host = ["max"]\n' + HISTORY, "host must be a string"),
    "hosts_not_table": (_hist(replace=("hosts = { a72", "hosts = { a72 = 3, b")),
                        "expected a table"),
    "functions_float": (_hist(replace=("functions = 4", "functions = 4.0")), "functions must be"),
    "bit_huge": (_hist(replace=('introduced = "r2"', 'introduced = "r2"\nregister = '
                                '"0x6030000000160001"\nbit = 18446744073709551616')),
                 "bit must be an integer in 0..63"),
    "changes_not_list": (_hist(replace=("changes = [", "changes = {x = [")).replace(
        'stores = "0x0" }]', 'stores = "0x0" }]}'), "changes must be a list"),
    "release_int": (_hist(replace=('releases = ["r0"', 'releases = [0')), "non-empty strings"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HISTORIES))
def test_hostile_history(tmp_path, name):
    text, fragment = HOSTILE_HISTORIES[name]
    h = tmp_path / "in" / "h.toml"
    h.parent.mkdir()
    h.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out" / "out.csv"
    out.parent.mkdir()
    out.write_text("previous\n")
    check(["matrix", "--history", h, "--strategy", "upstream", "--vmm", "qemu",
           "--output", out], out.parent, h.parent, fragments=(str(h), fragment))


def test_history_named_like_a_long_path(tmp_path):
    check(["cost", "--history", tmp_path / ("x" * 300), "--strategy", "upstream", "--vmm",
           "qemu"], tmp_path, fragments=("File name too long",))


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "dir", "loop", "empty_path"])
def test_special_input_files(tmp_path, special):
    import os
    if special == "fifo":
        os.mkfifo(tmp_path / "f.toml")
        path, fragment = tmp_path / "f.toml", "not a regular file (a FIFO)"
    elif special == "dir":
        (tmp_path / "d.toml").mkdir()
        path, fragment = tmp_path / "d.toml", "is a directory"
    elif special == "loop":
        (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
        (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
        path, fragment = tmp_path / "a.toml", "Too many levels of symbolic links"
    elif special == "empty_path":
        path, fragment = "", "empty path"
    else:
        path, fragment = special, "not a regular file (a character device)"
    for argv in (["matrix", "--history", path, "--strategy", "upstream", "--vmm", "qemu"],
                 ["probe-replay", path, "--history", "linux"],
                 ["baseline", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu",
                  "--hosts", path],
                 ["fleet", "--history", "linux", "--inventory", FLEET / "inventory.toml",
                  "--plan", path],
                 ["report", path, "--output", tmp_path / "r.html"]):
        if argv[0] in ("baseline", "fleet") and special in ("/dev/zero", "empty_path"):
            continue        # no .toml/.csv suffix: refused for that first
        check(argv, tmp_path, fragments=(fragment,))


# inventories and plans

HOSTILE_INVENTORIES = {
    "hosts_past_cap": (INVENTORY.replace("hosts = 10", "hosts = 1000001"), "past the cap"),
    "hosts_total_past_cap": (INVENTORY.replace("hosts = 10", "hosts = 1000000").replace(
        "hosts = 5", "hosts = 1000000") + "".join(
        f'[[group]]\nname = "g{k}"\nhosts = 1000000\nkernel = "v6.1"\n' for k in range(9)),
        "more than 10,000,000 hosts"),
    "hosts_huge_string": (INVENTORY.replace("hosts = 10", 'hosts = "' + "9" * 5000 + '"'),
                          "hosts must be an integer"),
    "vmm_list": (INVENTORY.replace('vmm = "qemu"', 'vmm = ["qemu"]', 1), "vmm must be a string"),
    "cpu_int": (INVENTORY.replace('cpu = "neoverse-n1"', "cpu = 1"), "cpu must be a non-empty"),
    "empty_name": (INVENTORY.replace('name = "small"', 'name = ""'), "name must be a non-empty"),
    "group_name_ctrl": (INVENTORY.replace('name = "a"', 'name = "a\\u0000"'), "control character"),
    "deep": ("x = " + "[" * 5000, "nested more than 32 levels"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_INVENTORIES))
def test_hostile_inventory(tmp_path, name):
    text, fragment = HOSTILE_INVENTORIES[name]
    inv = tmp_path / "inv.toml"
    inv.write_text(text)
    check(["baseline", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu",
           "--hosts", inv], tmp_path, fragments=(str(inv), fragment))


@pytest.mark.parametrize("text, fragment", [
    ("group,hosts,kernel\na,99999999999,v6.1\n", "past the cap"),
    ("group,hosts,kernel\na,1,v6.1\n\"b,1,v6.1\n", "malformed CSV"),
    ("group,hosts,kernel\na\x00,1,v6.1\n", ""),
    (b"group,hosts,kernel\n\xff,1,v6.1\n", "not a UTF-8"),
])
def test_hostile_inventory_csv(tmp_path, text, fragment):
    inv = tmp_path / "inv.csv"
    inv.write_bytes(text if isinstance(text, bytes) else text.encode())
    check(["baseline", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu",
           "--hosts", inv], tmp_path, fragments=(str(inv), fragment))


HOSTILE_PLANS = {
    "waves_past_cap": (PLAN.replace("waves = 3", "waves = 100000000"), "past the cap"),
    "every_past_cap": (PLAN.replace("every = 7", "every = 367"), "past the cap"),
    "count_past_cap": (PLAN.replace("count = 40", "count = 10000001"), "past the cap"),
    "vcpus_past_kvm": (PLAN.replace("vcpus = [2, 4]", "vcpus = [2, 513]"), "past the cap"),
    "groups_nested": (PLAN.replace('groups = ["a", "b"]', 'groups = [["a"], "b"]'),
                      "groups must be a list of group names"),
    "groups_string": (PLAN.replace('groups = ["a", "b"]', 'groups = "a"'), "groups must be"),
    "placement_list": (PLAN.replace('placement = "same-release"', 'placement = ["random"]'),
                       "placement must be"),
    "date_overflow": (PLAN.replace("end = 2026-03-30", "end = 9999-12-31").replace(
        "start = 2026-01-12", "start = 9999-12-01").replace("every = 7", "every = 366"),
        "past the year 9999"),
    "initial_nan": (PLAN.replace("initial = 0.5", "initial = nan"), "initial must be"),
    "empty_name": (PLAN.replace('name = "p"', 'name = ""'), "name must be a non-empty"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PLANS))
def test_hostile_plan(tmp_path, name):
    text, fragment = HOSTILE_PLANS[name]
    (tmp_path / "inv.toml").write_text(INVENTORY)
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    check(["fleet", "--history", "linux", "--inventory", tmp_path / "inv.toml", "--plan", plan],
          tmp_path, fragments=(str(plan), fragment))


# probe records

def _probe_with(n_type: str, field: str, value) -> str:
    """The probe file with ``field`` of the first ``n_type`` record set to ``value``."""
    out, done = [], False
    for line in PROBE_LINES:
        rec = json.loads(line) if line.strip() else None
        if not done and rec and rec.get("t") == n_type:
            rec[field] = value
            line, done = json.dumps(rec), True
        out.append(line)
    assert done
    return "\n".join(out) + "\n"


HOSTILE_PROBES = [
    ("set", "val", "0x10000000000000000", "val must be a 64-bit number"),
    ("set", "val", 18446744073709551616, "val must be a 64-bit number"),
    ("set", "val", [1], "val must be a 64-bit number"),
    ("set", "val", "zz", "val must be a 64-bit number"),
    ("get", "id", -1, "id must be a 64-bit number"),
    ("get", "ret", "0", "field 'ret'"),
    ("get", "ret", 1 << 40, "field 'ret'"),
    ("get", "vm", ["A"], "field 'vm'"),
    ("get", "test", 7, "field 'test'"),
    ("create_vcpu", "idx", "0", "field 'idx'"),
    ("create_vcpu", "idx", -1, "field 'idx'"),
    ("vcpu_init", "psci_0_2", "yes", "field 'psci_0_2'"),
    ("reg_list", "by_coproc", [1, 2], "field 'by_coproc'"),
    ("reg_list", "by_coproc", {"0x0014": "3"}, "field 'by_coproc'"),
    ("fw_reg_ids", "ids", "0x1", "field 'ids'"),
    ("fw_reg_ids", "ids", [1 << 64], "ids must be a 64-bit number"),
    ("bitmap_bitscan", "reject_errnos", ["EINVAL"], "field 'reject_errnos'"),
    ("bitmap_bitscan", "default", {"x": 1}, "default must be a 64-bit number"),
    ("badaddr", "get_ret", None, "field 'get_ret'"),
    ("run", "label", 0, "field 'label'"),
    ("start", "release", ["5.10"], "release must be a string"),
]


@pytest.mark.parametrize("rtype, field, value, fragment", HOSTILE_PROBES,
                         ids=[f"{t}-{f}-{i}" for i, (t, f, _, _) in enumerate(HOSTILE_PROBES)])
def test_hostile_probe_record(tmp_path, rtype, field, value, fragment):
    probe = tmp_path / LINUX_PROBE.name
    probe.write_text(_probe_with(rtype, field, value))
    line = check(["probe-replay", probe, "--history", "linux"], tmp_path,
                 fragments=(str(probe), fragment))
    assert ": line " in line


@pytest.mark.parametrize("line, fragment", [
    ("[" * 10_000 + "]" * 10_000, "nested more than 32 levels"),
    ('{"t": "set", "vm": "A", "test": "x", "id": "0x1", "val": 1e999, "ret": 0}', "val"),
    ('{"t": "get", "vm": "Z", "test": "x", "id": "0x6030000000140000", "ret": 0}',
     "VM 'Z' was not created"),
    ('{"t": ' + "9" * 5000 + "}", "not a JSON object"),
    ('{"t": "get", "vm": "A", "test": "x\\udcff", "id": "0x6030000000140000", "ret": 0}',
     "lone surrogate"),
])
def test_hostile_probe_line(tmp_path, line, fragment):
    probe = tmp_path / LINUX_PROBE.name
    probe.write_text("\n".join(PROBE_LINES[:3] + [line] + PROBE_LINES[3:]) + "\n")
    check(["probe-replay", probe, "--history", "linux"], tmp_path,
          fragments=(str(probe), fragment))


# --------------------------------------------------------------------------
# Hostile option values

M = ["matrix", "--history", "linux", "--strategy", "upstream", "--vmm", "qemu"]
SW = ["sweep", "--histories", "2", "--releases", "5", "--strategy", "upstream", "--vmm", "qemu",
      "--jobs", "1"]
FL = ["fleet", "--history", "linux", "--inventory", str(FLEET / "inventory.toml"), "--plan",
      str(FLEET / "plan.toml")]

WI = ["what-if", "--history", "linux", "--add-release", "v9.9", "--vmm", "qemu"]

HOSTILE_OPTIONS = [
    (M + ["--vcpus", "513"], "at most 512"),
    (M + ["--vcpus", "0"], "at least 1"),
    (M + ["--vcpus", "9" * 5000], "expected an integer"),
    (["cost", *M[1:], "--vcpus", "100000000000"], "at most 512"),
    (M + ["--config", "random:p=0.5,seed=1,n=10001"], "capped at 10,000"),
    (M + ["--config", "random:p=0.5,seed=9223372036854775808"], "seed at 2**63-1"),
    (M + ["--since", ""], "unknown release ''"),
    (M + ["--config", "random:p=0.5,seed=1,n=417"], "at most 1,000,000"),     # 49 x 49 x 417
    (M + ["--host", ""], "unknown host profile ''"),
    (["matrix", "--history", "", "--strategy", "upstream", "--vmm", "qemu"], "empty"),
    (SW[:1] + ["--histories", "10000001"], "at most 10,000,000"),
    (SW[:1] + ["--histories", "1000000"], "at most 20,000,000"),     # x 6 strategies x 7 VMMs
    (SW + ["--seed", "9223372036854775808"], "at most 9,223,372,036,854,775,807"),
    (SW + ["--seed", "9223372036854775807"], "run past 2**63-1"),
    (SW + ["--seed", "-1"], "at least 0"),
    (SW[:-2] + ["--jobs", "257"], "at most 256"),
    (SW + ["--batch", "100001"], "at most 100,000"),
    (SW + ["--scheduler", "not an address"], "is not an address"),
    (SW + ["--scheduler", "/tmp/sock"], "is not an address"),
    (SW + ["--scheduler", "tcp://h:99999"], "is not an address"),
    (SW + ["--releases", "1" + "0" * 400], "releases must be"),
    (["generate", "--name", "a\nb"], "control character"),
    (["generate", "--name", ""], "must not be empty"),
    (["generate", "--seed", "9223372036854775808"], "at most"),
    (["generate", "--releases", "1" + "0" * 400], "releases must be"),
    (FL + ["--guests", "10000001"], "at most 10,000,000"),
    (FL + ["--seed", "-5"], "at least 0"),
    (["bench", "--seed", "9223372036854775808"], "at most"),
    (WI + ["--service", "X:std:functions=\u00b2"], "functions must be an integer"),
    (WI + ["--service", "X:std:functions=" + "9" * 30], "functions must be an integer"),
    (WI + ["--service", "X:std-hyp:functions=65536"], "overflows"),
    (WI + ["--service", "X:std:register=0x16030000000160000:bit=1"], "does not fit in 64 bits"),
    (WI + ["--service", "X:std", "--until", ""], "unknown release ''"),
    (WI + ["--service", "X:std", "--add-release", "a\nb"], "--add-release"),
    (["bench", "--repeat", "1001"], "at most 1,000"),
    (["bench", "--scalar-pairs", "0"], "at least 1"),
]


@pytest.mark.parametrize("argv, fragment", HOSTILE_OPTIONS,
                         ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(HOSTILE_OPTIONS)])
def test_hostile_option(tmp_path, argv, fragment):
    check(argv, tmp_path, fragments=(fragment,))


def test_caps_are_in_help():
    import contextlib
    import io

    from hcsim.frontends import cli
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = " ".join(buf.getvalue().split())
    assert "cap 256" in text and "cap 10,000,000" in text and "2**63-1" in text
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        cli.main(["matrix", "--help"])
    assert "1..512" in buf.getvalue() and "KVM_MAX_VCPUS" in buf.getvalue()


# hypothesis: histories generated from scratch (valid or nearly so)

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789.-", min_size=1, max_size=6)


@st.composite
def generated_history(draw) -> dict:
    releases = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    rel = st.sampled_from(releases)
    doc: dict = {"name": draw(NAMES), "releases": releases}
    if draw(st.booleans()):
        doc["registers_from"] = draw(rel)
    services = []
    for name in draw(st.lists(NAMES, max_size=6, unique=True)):
        s = {"name": name, "space": draw(st.sampled_from(["std", "std-hyp", "vendor-hyp"])),
             "introduced": draw(rel)}
        if draw(st.booleans()):
            s["functions"] = draw(st.integers(1, 70_000))
        if draw(st.booleans()):
            s["default"] = draw(st.sampled_from(["on", "off"]))
        if draw(st.integers(0, 3)) == 0:
            s["register"] = f"0x{0x6030000000160000 + draw(st.integers(0, 5)):x}"
            s["bit"] = draw(st.integers(0, 63))
        services.append(s)
    if services:
        doc["service"] = services
    firmware = []
    for k, name in enumerate(draw(st.lists(NAMES, max_size=2, unique=True))):
        values = draw(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 3), min_size=1,
                               max_size=3))
        f = {"name": name, "id": f"0x{0x6030000000140000 + k:x}", "introduced": draw(rel),
             "reset": hex(values[0]), "accepts": [hex(v) for v in values],
             "on_write": draw(st.sampled_from(["store", "check"]))}
        if len(releases) > 1 and draw(st.booleans()):
            f["changes"] = [{"release": releases[-1], "reset": hex(values[-1])}]
        firmware.append(f)
    if firmware:
        doc["firmware"] = firmware
    return doc


@settings(SETTINGS, max_examples=30)
@given(doc=generated_history())
def test_generated_history(tmp_path_factory, doc):
    _history_cmd(tmp_path_factory.mktemp("hg"), toml_doc(doc).encode())
