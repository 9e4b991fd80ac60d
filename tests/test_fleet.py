"""Fleet simulator (hcsim.analyses.fleet) and its inventory and plan files (hcsim.analyses.inventory)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from histgen import histories
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli_errors import assert_one_line_error, run

from hcsim.analyses import baseline, fleet, inventory
from hcsim.analyses.chain import create, hop
from hcsim.analyses.fleet import engine as fleet_engine
from hcsim.errors import InputError
from hcsim.model import strategies
from hcsim.model import vmm as vmm_mod
from hcsim.model.history import DEFAULT_HOST
from hcsim.model.kvm import Kernel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "fleet-example"
DATA = Path(__file__).parent / "data"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def setup(history, tmp_path, inv_text, plan_text, inv_name="inv.toml"):
    inv = inventory.load_inventory(write(tmp_path, inv_name, inv_text), history)
    plan = inventory.load_plan(write(tmp_path, "plan.toml", plan_text), history, inv)
    return inv, plan


def summary(result, **key):
    rows = result.summary
    for k, v in key.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, rows
    return rows.iloc[0].to_dict()


# -- a small hand-checkable fleet on tests/data/four.toml --------------------------------
# Two groups of one host each, both r1.  Day 7: a -> r3 (its guests go to b: r1 -> r1).
# Day 14: b -> r3 (every guest goes to a: r1 -> r3, QEMU writes back VENDOR_HYP_BMAP's
# reset 0x1: +PTP).  Day 21: a -> r1 (every guest to b: r3 -> r3).  Day 28: b -> r1
# (every guest to a, now r1: r3 -> r1 refused, count 4 > 3; they reboot on b, r1).

TWO_HOSTS = """
[[group]]
name = "a"
hosts = 1
kernel = "r1"
vmm = "qemu"

[[group]]
name = "b"
hosts = 1
kernel = "r1"
vmm = "qemu"
"""

PING_PONG = """
start = 2026-01-05
end = 2026-02-09
[guests]
count = 10
vcpus = [1]
initial = 1.0

[[rollout]]
to = "r3"
groups = ["a"]
start = 2026-01-12
[[rollout]]
to = "r3"
groups = ["b"]
start = 2026-01-19
[[rollout]]
to = "r1"
groups = ["a"]
start = 2026-01-26
[[rollout]]
to = "r1"
groups = ["b"]
start = 2026-02-02
"""


def test_ping_pong_fleet_by_hand(four, tmp_path):
    inv, plan = setup(four, tmp_path, TWO_HOSTS, PING_PONG)
    result = fleet.simulate(four, inv, plan, ["upstream"], [None], ["default"], seed=3)
    on_a = int((fleet.population(plan, 2, 10, 3).host == 0).sum())
    got = summary(result)
    assert got["guests"] == 10
    assert got["evacuations"] == on_a + 30
    assert got["refused"] == 10 and got["hosts_blocked"] == 1
    assert got["gained_guests"] == 10 and got["broken_guests"] == 0
    # Stream bytes per vCPU: r1 lists PSCI + 2 bitmaps (48 B under QEMU), r3 one more (64 B);
    # the refused wave still sent its streams.
    assert got["bytes_moved"] == 48 * on_a + 48 * 10 + 64 * 10 + 64 * 10
    tl = result.timeline
    assert list(tl["refused"]) == [0, 0, 0, 10]
    assert list(tl["rollback"]) == [False, False, False, False]


def test_zero_unknown_baseline_keeps_ptp_off(four, tmp_path):
    inv, plan = setup(four, tmp_path, TWO_HOSTS, PING_PONG)
    result = fleet.simulate(four, inv, plan, ["upstream"], ["zero-unknown"], seed=3)
    # zero-unknown writes 0 to VENDOR_HYP_BMAP, absent from the r1 stream: no gain.
    assert summary(result, config="default")["gained_guests"] == 0
    # The count check still refuses r3 -> r1.
    assert summary(result, config="baseline")["refused"] == 10


ROLLBACK = """
start = 2026-01-05
end = 2026-01-31
[guests]
count = 12
vcpus = [2]
initial = 1.0
[[rollout]]
to = "r1"
groups = ["a"]
start = 2026-01-12
[[rollout]]
label = "b back"
to = "r1"
from = "r3"
groups = ["b"]
start = 2026-01-19
"""


def test_raz_wi_rollback_breaks_guests_silently_unless_baseline(four, tmp_path):
    inv, plan = setup(four, tmp_path, TWO_HOSTS.replace('"r1"', '"r3"'), ROLLBACK)
    result = fleet.simulate(four, inv, plan, ["raz-wi"], [None], seed=1)
    default, base = summary(result, config="default"), summary(result, config="baseline")
    # Every guest boots on r3 with PV_LOCK and PTP; r1 drops those bits (RAZ/WI).
    assert default["broken_guests"] == 12 == default["broken_at_end"]
    assert default["lost_hops"] == 12 and default["refused"] == 0
    # The baseline over {r3, r1} keeps PV_TIME and TRNG only: nothing to lose, and
    # every guest gave up PV_LOCK and PTP at creation.
    assert base["broken_guests"] == 0 and base["giving_up_guests"] == 12
    assert list(result.timeline["rollback"])[-1]   # r3 -> r1 with `from`: a rollback


def test_a_pool_of_one_host_strands_its_guests(four, tmp_path):
    inv, plan = setup(four, tmp_path, TWO_HOSTS.replace('vmm = "qemu"', 'vmm = "firecracker"', 1),
                      PING_PONG)
    got = summary(fleet.simulate(four, inv, plan, ["upstream"], [None], ["default"], seed=3))
    on_a = int((fleet.population(plan, 2, 10, 3).host == 0).sum())
    # a (Firecracker) and b (QEMU) are pools of one host each: every guest of every
    # wave has nowhere to go and reboots in place; each wave touches one host.
    assert got["evacuations"] == 0 and got["bytes_moved"] == 0
    assert got["stranded"] == 2 * on_a + 2 * (10 - on_a)
    assert got["hosts_blocked"] == 2 * (on_a > 0) + 2 * (on_a < 10)


THREE_HOSTS = """
[[group]]
name = "new"
hosts = 1
kernel = "r3"
vmm = "qemu"
[[group]]
name = "old"
hosts = 1
kernel = "r1"
vmm = "qemu"
[[group]]
name = "spare"
hosts = 1
kernel = "r1"
vmm = "qemu"
"""

ONE_WAVE = """
start = 2026-01-05
end = 2026-01-20
placement = "PLACEMENT"
[guests]
count = 30
initial = 1.0
[[rollout]]
to = "r3"
groups = ["old"]
start = 2026-01-12
"""


@pytest.mark.parametrize("placement", ["same-release", "upgraded"])
def test_placement_rule_picks_the_destination(four, tmp_path, placement):
    inv, plan = setup(four, tmp_path, THREE_HOSTS, ONE_WAVE.replace("PLACEMENT", placement))
    got = summary(fleet.simulate(four, inv, plan, ["upstream"], [None], ["default"], seed=2))
    on_old = int((fleet.population(plan, 3, 30, 2).host == 1).sum())
    assert got["evacuations"] == on_old > 0
    # same-release: old (r1) -> spare (r1), preserved; upgraded: old -> new (r3), +PTP.
    assert got["gained_guests"] == (on_old if placement == "upgraded" else 0)


def test_same_seed_same_result_and_another_seed_differs(linux):
    inv = inventory.load_inventory(EXAMPLE / "inventory.toml", linux)
    plan = inventory.load_plan(EXAMPLE / "plan.toml", linux, inv)
    one = fleet.simulate(linux, inv, plan, ["upstream"], ["qemu-tolerant"], guests=3000, seed=7)
    two = fleet.simulate(linux, inv, plan, ["upstream"], ["qemu-tolerant"], guests=3000, seed=7)
    assert one.summary.equals(two.summary) and one.timeline.equals(two.timeline)
    other = fleet.simulate(linux, inv, plan, ["upstream"], ["qemu-tolerant"], guests=3000, seed=8)
    assert not other.timeline.equals(one.timeline)


def test_linux_example_rollback_refuses_only_without_the_baseline(linux):
    inv = inventory.load_inventory(EXAMPLE / "inventory.toml", linux)
    plan = inventory.load_plan(EXAMPLE / "plan.toml", linux, inv)
    r = fleet.simulate(linux, inv, plan, ["upstream"], ["qemu", "qemu-tolerant"], guests=4000)
    qemu_base = summary(r, vmm="qemu", config="baseline")
    tolerant_default = summary(r, vmm="qemu-tolerant", config="default")
    tolerant_base = summary(r, vmm="qemu-tolerant", config="baseline")
    # Every guest on v6.15 when the rollback starts must go back to v6.12: QEMU's count
    # check refuses all of them, whatever was written; with the tolerance only guests
    # created on v6.15 (PSCI 1.3) are refused, and the baseline (PSCI 1.1) none.
    assert qemu_base["refused"] > tolerant_default["refused"] > 0
    assert tolerant_base["refused"] == 0 and tolerant_base["broken_guests"] == 0
    assert r.summary["broken_guests"].sum() == 0   # Linux added no default-on service since v5.19
    hosts = r.hosts[r.hosts["wave"] == r.hosts["wave"].max()]
    assert hosts["hosts"].sum() == 10000


def test_inventory_toml_and_csv_examples_agree(linux):
    toml = inventory.load_inventory(EXAMPLE / "inventory.toml", linux)
    csv = inventory.load_inventory(EXAMPLE / "inventory.csv", linux)
    assert toml.groups == csv.groups and toml.hosts == 10000


def test_docstring_example():
    import doctest
    import os
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        assert doctest.testmod(fleet).failed == 0
    finally:
        os.chdir(old)


# -- differential: the memoised, vectorised fleet == guest-by-guest scalar simulation -------

def reference(h, inv, plan, spec, config_name, seed):
    """A slow guest-by-guest simulation with hcsim.analyses.chain, sharing only placement."""
    strategy = strategies.parse(spec)
    sched = fleet.schedule(h, inv, plan, seed)
    pop = fleet.population(plan, inv.hosts, plan.guests.count, seed)
    setting = {}
    for v in sched.vmm:
        for c in sched.cpu:
            mine = (sched.host_vmm == sched.vmm.index(v)) & (sched.host_cpu == sched.cpu.index(c))
            if not mine.any():
                continue
            kernels = sorted({int(k) for ks in [sched.start_kernel, *sched.kernel_after]
                              for k in ks[mine]})
            hosts = [baseline.HostSpec(sched.kernels[k], c) for k in kernels]
            setting[(v, c)] = baseline.compute(h, strategy, vmm_mod.parse(v), hosts).setting \
                if config_name == "baseline" else frozenset()
    kernel = sched.start_kernel.copy()
    n = pop.day.size
    host = pop.host.copy()
    guests: list = [None] * n
    ever_lost, ever_gained, giving_up = [False] * n, [False] * n, [False] * n
    c = dict.fromkeys(("evacuations", "refused", "unsupported", "stranded", "hosts_blocked",
                       "lost_hops", "bytes_moved"), 0)

    def boot(i):
        hk = host[i]
        v, cpu = sched.vmm[sched.host_vmm[hk]], sched.cpu[sched.host_cpu[hk]]
        k = Kernel(h, sched.kernels[kernel[hk]], strategy, cpu)
        g = create(k, vmm_mod.parse(v), setting[(v, cpu)])
        guests[i] = g
        return g, create(k, vmm_mod.parse(v))

    created = 0

    def create_until(day):
        nonlocal created
        while created < n and pop.day[created] <= day:
            g, d = boot(created)
            giving_up[created] = bool(d.view - g.view)
            created += 1

    for w, wave in enumerate(sched.waves):
        create_until((wave.date - plan.start).days)
        upgrading = np.zeros(kernel.size, dtype=bool)
        upgrading[wave.hosts] = True
        idx = np.array([i for i in range(created) if upgrading[host[i]]], dtype=np.int64)
        dst = fleet_engine._place(sched, plan.placement, kernel, upgrading, wave.to, host[idx],
                           fleet.uniform(seed, idx, w + 1))
        stuck = []
        for i, d in zip(idx.tolist(), dst.tolist()):
            if d < 0:
                c["stranded"] += 1
                stuck.append(i)
                continue
            c["evacuations"] += 1
            cpu = sched.cpu[sched.host_cpu[d]]
            step, moved = hop(guests[i], vmm_mod.parse(sched.vmm[sched.host_vmm[d]]),
                              Kernel(h, sched.kernels[kernel[d]], strategy, cpu))
            c["bytes_moved"] += step.bytes_per_vcpu * int(pop.vcpus[i])
            if step.outcome in ("refused", "unsupported"):
                c[step.outcome] += 1
                stuck.append(i)
                continue
            c["lost_hops"] += step.outcome in ("lost", "mixed")
            ever_lost[i] |= bool(step.drift_lost)
            ever_gained[i] |= bool(step.drift_gained)
            host[i], guests[i] = d, moved
        c["hosts_blocked"] += len({int(host[i]) for i in stuck})
        kernel = sched.kernel_after[w].copy()
        for i in stuck:
            boot(i)
    create_until((plan.end - plan.start).days)
    return {**c, "guests": created, "broken_guests": sum(ever_lost),
            "broken_at_end": sum(bool(g.boot_view - g.view) for g in guests[:created]),
            "gained_guests": sum(ever_gained), "giving_up_guests": sum(giving_up)}


SPECS = ["upstream", "invalidate-on-write:scope=fw", "raz-wi:ranges=1", "raz-einval:ranges=1",
         "full-bitmap:width=1024"]


@st.composite
def fleets(draw):
    h = draw(histories(max_releases=4, max_services=5))
    names = list(h.releases)
    groups = []
    for g in range(draw(st.integers(1, 3))):
        groups.append({"name": f"g{g}", "hosts": draw(st.integers(1, 3)),
                       "kernel": draw(st.sampled_from(names)),
                       "vmm": draw(st.sampled_from(["qemu", "qemu-tolerant", "firecracker",
                                                    "zero-unknown", "crosvm"]))})
    lines = []
    for g in groups:
        lines += ["[[group]]"] + [f"{k} = {json.dumps(v)}" for k, v in g.items()] + [""]
    plan = ["start = 2026-01-05", "end = 2026-03-30",
            f'placement = "{draw(st.sampled_from(inventory.PLACEMENTS))}"',
            "[guests]", f"count = {draw(st.integers(0, 25))}",
            f"vcpus = {draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))}",
            f"initial = {draw(st.sampled_from([0.0, 0.5, 1.0]))}", ""]
    for _ in range(draw(st.integers(1, 3))):
        day = dt.date(2026, 1, 12) + dt.timedelta(days=draw(st.integers(0, 40)))
        plan += ["[[rollout]]", f'to = "{draw(st.sampled_from(names))}"',
                 f"start = {day.isoformat()}", f"waves = {draw(st.integers(1, 3))}",
                 f"groups = {json.dumps(draw(st.lists(st.sampled_from([g['name'] for g in groups]), min_size=1, max_size=2, unique=True)))}",  # noqa: E501
                 ""]
    return h, "\n".join(lines), "\n".join(plan), draw(st.sampled_from(SPECS)), \
        draw(st.integers(0, 3))


@settings(max_examples=40, deadline=None)
@given(fleets())
def test_fleet_equals_a_guest_by_guest_scalar_simulation(tmp_path_factory, case):
    h, inv_text, plan_text, spec, seed = case
    tmp = tmp_path_factory.mktemp("fleet")
    inv, plan = setup(h, tmp, inv_text, plan_text)
    result = fleet.simulate(h, inv, plan, [spec], [None], seed=seed)
    for config_name in fleet.CONFIGS:
        got = summary(result, config=config_name)
        want = reference(h, inv, plan, spec, config_name, seed)
        assert {k: got[k] for k in want} == want, (config_name, plan_text, inv_text)


def test_uniform_is_a_deterministic_function_of_seed_id_and_salt():
    ids = np.arange(100000)
    u = fleet.uniform(5, ids, 2)
    assert np.array_equal(u, fleet.uniform(5, ids, 2))
    assert ((u >= 0) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.01
    assert np.array_equal(fleet.uniform(5, ids[::-1], 2), u[::-1])
    assert not np.array_equal(fleet.uniform(5, ids, 3), u)


# -- bad inventory and plan files ------------------------------------------------------------

GOOD_PLAN = """
start = 2026-01-05
end = 2026-03-30
[[rollout]]
to = "v6.6"
start = 2026-01-12
"""
GOOD_INV = '[[group]]\nname = "web"\nhosts = 10\nkernel = "v6.1"\nvmm = "qemu"\n'

BAD_INVENTORIES = {
    "inv.toml": [
        ("[[group]\n", "malformed TOML"),
        ('name = "x"\n', "missing key 'group'"),
        (GOOD_INV.replace("v6.1", "v9.9"), "group 'web': kernel: unknown kernel 'v9.9'"),
        (GOOD_INV.replace("10", "0"), "group 'web': hosts must be an integer >= 1, got 0"),
        (GOOD_INV + 'cpu = "pentium"\n', "group 'web': unknown host CPU profile 'pentium'"),
        (GOOD_INV.replace('"qemu"', '"bhyve"'), "group 'web': unknown VMM 'bhyve'"),
        (GOOD_INV + GOOD_INV, "group 'web': duplicate group name"),
        (GOOD_INV + "colour = 1\n", "group #1: unknown key 'colour'"),
        ("group = []\n", "no groups"),
    ],
    "inv.csv": [
        ("", "empty inventory"),
        ("group,hosts\nweb,1\n", "line 1: missing column 'kernel'"),
        ("group,hosts,kernel,rack\n", "line 1: unknown column 'rack'"),
        ("group,hosts,kernel\nweb,1\n", "line 2: expected 3 fields, got 2"),
        ("# fleet\ngroup,hosts,kernel\nweb,x,v6.1\n", "line 3: group 'web': hosts must be"),
        ("group,hosts,kernel\nweb,1,v6.1\nweb,2,v6.1\n", "line 3: group 'web': duplicate group"),
    ],
}


@pytest.mark.parametrize("name, text, fragment",
                         [(n, t, f) for n, cases in BAD_INVENTORIES.items() for t, f in cases])
def test_bad_inventory_is_one_line_naming_the_file(linux, tmp_path, name, text, fragment):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError) as exc:
        inventory.load_inventory(path, linux)
    message = str(exc.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message


BAD_PLANS = [
    ("start = 2026-01-05\n", "missing key 'end'"),
    (GOOD_PLAN.replace("end = 2026-03-30", "end = 2025-03-30"), "end 2025-03-30 is before start"),
    (GOOD_PLAN.replace("2026-01-12", '"soon"'), "rollout 'to v6.6': start must be a date"),
    (GOOD_PLAN + 'groups = ["db"]\n', "rollout 'to v6.6': unknown group 'db'"),
    (GOOD_PLAN + "waves = 20\n",
     "rollout 'to v6.6': wave 13 on 2026-04-06 is outside 2026-01-05..2026-03-30"),
    (GOOD_PLAN.replace('"v6.6"', '"v6.66"'), "rollout #1: to: unknown kernel 'v6.66'"),
    (GOOD_PLAN + 'from = "v9"\n', "rollout 'to v6.6': from: unknown kernel 'v9'"),
    (GOOD_PLAN.replace("start = 2026-01-05", 'placement = "nearest"\nstart = 2026-01-05'),
     "placement must be one of same-release, upgraded, random"),
    (GOOD_PLAN + "[guests]\nvcpus = []\n", "guests: vcpus must be a non-empty list"),
    (GOOD_PLAN + "[guests]\ninitial = 2\n", "guests: initial must be a number in 0..1"),
    (GOOD_PLAN + "[guests]\ncount = -1\n", "guests: count must be an integer >= 0"),
    (GOOD_PLAN + "every = 0\n", "rollout 'to v6.6': every must be an integer >= 1"),
    (GOOD_PLAN + 'rollback = "yes"\n', "rollback must be true or false"),
    ("start = 2026-01-05\nend = 2026-03-30\nrollout = []\n", "rollout must be a non-empty"),
]


@pytest.mark.parametrize("text, fragment", BAD_PLANS)
def test_bad_plan_is_one_line_naming_the_file_and_entry(linux, tmp_path, text, fragment):
    inv = inventory.load_inventory(write(tmp_path, "inv.toml", GOOD_INV), linux)
    path = write(tmp_path, "plan.toml", text)
    with pytest.raises(InputError) as exc:
        inventory.load_plan(path, linux, inv)
    message = str(exc.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message


def test_rollback_defaults_from_release_order(linux, tmp_path):
    inv = inventory.load_inventory(write(tmp_path, "inv.toml", GOOD_INV), linux)
    plan = inventory.load_plan(write(tmp_path, "plan.toml", GOOD_PLAN.replace(
        '"v6.6"', '"v5.15"\nfrom = "v6.1"')), linux, inv)
    assert plan.rollouts[0].rollback is True


# -- command line --------------------------------------------------------------------------

def fleet_args(*extra):
    return ["fleet", "--history", "linux", "--registers", "hypercall",
            "--inventory", str(EXAMPLE / "inventory.toml"),
            "--plan", str(EXAMPLE / "plan.toml"), "--guests", "1500", *extra]


def test_cli_fleet_text_csv_and_files(tmp_path):
    code, out, err = run(fleet_args("--vmm", "qemu"))
    assert code == 0 and err == ""
    assert out.startswith("fleet: 10000 hosts, 1500 guests")
    assert all(len(line) <= 72 for line in out.splitlines())
    timeline, figure, table = tmp_path / "t.csv", tmp_path / "f.png", tmp_path / "s.json"
    code, out, _ = run(fleet_args("--strategy", "raz-wi", "--config", "baseline",
                                  "--format", "json", "--output", str(table),
                                  "--timeline", str(timeline), "--figure", str(figure)))
    assert code == 0 and out == ""
    rows = json.loads(table.read_text())["rows"]
    assert [(r["strategy"], r["vmm"], r["config"]) for r in rows] == \
        [("raz-wi", "inventory", "baseline")]
    assert timeline.read_text().splitlines()[0] == ",".join(fleet.TIMELINE_COLUMNS)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra, fragment", [
    (["--config", "fancy"], "invalid choice: 'fancy'"),
    (["--vmm", "bhyve"], "unknown VMM 'bhyve'"),
    (["--strategy", "nope"], "unknown strategy 'nope'"),
    (["--guests", "-3"], "must be at least 0"),
    (["--format", "yaml"], "unknown format 'yaml'"),
    (["--figure", "f.gif"], "the figure must be a .png, .svg or .pdf file"),
])
def test_cli_fleet_bad_options(tmp_path, extra, fragment):
    code, out, err = run(fleet_args(*extra))
    assert_one_line_error(code, out, err, fragment)


def test_cli_fleet_bad_files_write_nothing(tmp_path):
    bad = write(tmp_path, "inv.csv", "group,hosts,kernel\nweb,10,v9.9\n")
    outputs = [tmp_path / "s.csv", tmp_path / "t.csv", tmp_path / "f.png"]
    code, out, err = run(["fleet", "--history", "linux", "--registers", "hypercall", "--inventory", str(bad),
                          "--plan", str(EXAMPLE / "plan.toml"), "--output", str(outputs[0]),
                          "--timeline", str(outputs[1]), "--figure", str(outputs[2])])
    assert_one_line_error(code, out, err, "line 2: group 'web': kernel: unknown kernel 'v9.9'")
    assert not any(p.exists() for p in outputs) and sorted(tmp_path.iterdir()) == [bad]


def test_cli_fleet_needs_a_vmm_for_every_group(tmp_path):
    inv = write(tmp_path, "inv.csv", "group,hosts,kernel\nweb,10,v6.1\n")
    plan = write(tmp_path, "plan.toml", GOOD_PLAN)
    code, out, err = run(["fleet", "--history", "linux", "--registers", "hypercall", "--inventory", str(inv),
                          "--plan", str(plan)])
    assert_one_line_error(code, out, err, "group 'web' has no vmm (give vmm = ... or --vmm)")


def test_default_host_profile_is_the_historys(four, tmp_path):
    inv = inventory.load_inventory(write(tmp_path, "inv.toml", TWO_HOSTS), four)
    assert {g.cpu for g in inv.groups} == {DEFAULT_HOST}


def test_bench_fleet_quick_runs_both_configurations():
    code, out, err = run(["bench", "--fleet", "--quick", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["workload"]["hosts"] == 10000 and doc["workload"]["guests"] == 10000
    assert [r["config"] for r in doc["runs"]] == list(fleet.CONFIGS)
    assert all(r["evacuations"] > 0 and r["transitions"] > 0 for r in doc["runs"])


def test_readme_example_output_is_current():
    readme = (EXAMPLE / "README.md").read_text()
    block = readme.split("```\nfleet:", 1)[1].split("```", 1)[0]
    code, out, _ = run(["fleet", "--history", "linux", "--registers", "hypercall", "--inventory",
                        str(EXAMPLE / "inventory.toml"), "--plan", str(EXAMPLE / "plan.toml"),
                        "--guests", "100000", "--vmm", "qemu", "--vmm", "qemu-tolerant"])
    assert code == 0 and out.startswith("fleet:" + block)


def test_scenario_rolls_out_rolls_back_and_forward_again(four):
    inv, plan = fleet.scenario(four, ["r1", "r2", "r3"], hosts=8, waves=2, guests=40)
    assert [(r.frm, r.to, r.rollback) for r in plan.rollouts] == [
        ("r1", "r2", False), ("r2", "r3", False), ("r3", "r2", True), ("r2", "r3", False)]
    sched = fleet.schedule(four, inv.with_vmm(None), plan, 0)
    assert [sched.kernels[k] for k in np.unique(sched.kernel_after[-1])] == ["r3"]
    assert sum(w.hosts.size for w in sched.waves) == 4 * 8
    with pytest.raises(InputError, match="at least two kernels"):
        fleet.scenario(four, ["r1"])
    with pytest.raises(InputError, match="scenario: unknown kernel 'r7'"):
        fleet.scenario(four, ["r1", "r7"])


def test_fleet_timeline_draws_one_panel_per_metric_and_the_hosts(four, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from hcsim.frontends import plots
    inv, plan = setup(four, tmp_path, TWO_HOSTS, PING_PONG)
    r = fleet.simulate(four, inv, plan, ["upstream"], [None], seed=3)
    fig = plots.fleet_timeline(r.timeline, r.hosts, metrics=("refused", "gained_guests"))
    axes = fig.get_axes()
    assert len(axes) == 3 and axes[0].get_ylabel() == "hosts"
    assert [a.get_ylabel().split("\n")[0] for a in axes[1:]] == ["refused", "gained guests"]
    assert len(axes[1].get_lines()) == 2            # default and baseline runs


def test_runs_sharing_a_transition_table_equal_runs_alone(four, tmp_path):
    # With the inventory's VMMs the QEMU pool is {r3} and its baseline keeps every
    # service; with --vmm qemu the Firecracker host (r1) joins the pool and the
    # baseline drops PV_LOCK and PTP.  The shared memo must not mix the two.
    inv_text = TWO_HOSTS.replace('"r1"', '"r3"', 1).replace('vmm = "qemu"', 'vmm = "firecracker"')
    inv_text = inv_text.replace('vmm = "firecracker"', 'vmm = "qemu"', 1)
    only_b = PING_PONG.split("[[rollout]]")[0] + '[[rollout]]\nto = "r2"\ngroups = ["b"]\n' \
        'start = 2026-01-12\n'
    inv, plan = setup(four, tmp_path, inv_text, only_b)
    both = fleet.simulate(four, inv, plan, ["upstream"], [None, "qemu"], ["baseline"], seed=4)
    assert both.summary.giving_up_guests.tolist()[0] == 0 < both.summary.giving_up_guests.tolist()[1]
    for vmm in (None, "qemu"):
        alone = fleet.simulate(four, inv, plan, ["upstream"], [vmm], ["baseline"], seed=4)
        label = vmm or fleet.INVENTORY_VMM
        shared = both.summary[both.summary.vmm == label].drop(columns=["states", "transitions"])
        assert shared.reset_index(drop=True).equals(
            alone.summary.drop(columns=["states", "transitions"]))
