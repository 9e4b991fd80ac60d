"""Fleet inventory and rollout plan files: formats, loading, validation.

Both are read by :mod:`hcsim.analyses.fleet` (``hcsim fleet``); the inventory also by
:mod:`hcsim.analyses.baseline` (``hcsim baseline --hosts``).  Bad input is rejected
with one :class:`~hcsim.errors.InputError` line naming the file, the entry
and the problem, as for history files; nothing is simulated or written.
Examples for the Linux history: ``data/fleet-example/``.

Inventory (TOML or CSV, by file extension)
------------------------------------------
Groups of identical hosts::

    name = "example fleet"          # optional

    [[group]]
    name = "edge"                   # unique
    hosts = 1200                    # number of hosts, >= 1
    kernel = "v6.1"                 # a release or [[stable]] kernel of the history
    cpu = "neoverse-n1"             # optional host CPU profile (default: the history's host)
    vmm = "qemu"                    # optional VMM policy (default: the command's --vmm)

or the same as CSV, one group per line, with a header naming the columns
(``group``, ``hosts``, ``kernel`` required; ``cpu``, ``vmm`` optional and may
be empty; lines starting with ``#`` are comments)::

    group,hosts,kernel,cpu,vmm
    edge,1200,v6.1,neoverse-n1,qemu

A host's CPU profile and VMM never change; rollouts change its kernel.
Guests only migrate between hosts of the same VMM (a QEMU stream cannot be
restored by Firecracker).

Plan (TOML)
-----------
::

    name = "2026 rollout"           # optional
    start = 2026-01-05              # first day simulated (TOML date)
    end = 2026-12-28                # last day simulated
    placement = "same-release"      # optional: same-release | upgraded | random

    [guests]                        # optional table
    count = 100000                  # guests created over the year (--guests overrides)
    vcpus = [2, 4, 8]               # vCPUs of a guest, drawn uniformly
    initial = 0.5                   # share created on `start`; the rest uniformly after

    [[rollout]]                     # one or more
    label = "to v6.6"               # optional (default: "to <kernel>")
    to = "v6.6"                     # target kernel
    from = "v6.1"                   # optional: only hosts running this kernel
    groups = ["edge", "core"]       # optional: only these groups (default: all)
    start = 2026-01-12              # date of the first wave
    waves = 8                       # optional, default 1: waves of equal size
    every = 7                       # optional, default 7: days between waves
    rollback = false                # optional: marks the rollout as a rollback

At its first wave a rollout takes the hosts of its groups that run ``from``
(any kernel but ``to`` if omitted), shuffles them with the simulation seed
and splits them into ``waves`` nearly equal batches, one per wave.  Waves
happen in date order (rollouts in file order on the same day) and must fall
within ``start``..``end``.  ``rollback`` defaults to true when ``from`` and
``to`` are both given and ``to`` is an older release than ``from``.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcsim import files, limits
from hcsim.errors import InputError
from hcsim.model.history import History, Where, check_name, read_toml
from hcsim.model.vmm import REGISTRY as VMMS

#: Placement rules of :mod:`hcsim.analyses.fleet`.
PLACEMENTS = ("same-release", "upgraded", "random")

_INVENTORY_KEYS = {"name", "group"}
_GROUP_KEYS = {"name", "hosts", "kernel", "cpu", "vmm"}
_CSV_COLUMNS = ("group", "hosts", "kernel", "cpu", "vmm")
_PLAN_KEYS = {"name", "start", "end", "placement", "guests", "rollout"}
_GUEST_KEYS = {"count", "vcpus", "initial"}
_ROLLOUT_KEYS = {"label", "to", "from", "groups", "start", "waves", "every", "rollback"}


@dataclass(frozen=True)
class Group:
    """Identical hosts: how many, their kernel, host CPU profile and VMM."""

    name: str
    hosts: int
    kernel: str
    cpu: str
    vmm: str | None


@dataclass(frozen=True)
class Inventory:
    name: str
    groups: tuple[Group, ...]

    @property
    def hosts(self) -> int:
        return sum(g.hosts for g in self.groups)

    def with_vmm(self, vmm: str | None) -> Inventory:
        """Every group's VMM replaced by ``vmm``, or kept if None; all must be set."""
        groups = []
        for g in self.groups:
            chosen = vmm or g.vmm
            if chosen is None:
                raise InputError(f"inventory {self.name!r}: group {g.name!r} has no vmm "
                                 "(give vmm = ... or --vmm)")
            groups.append(Group(g.name, g.hosts, g.kernel, g.cpu, chosen))
        return Inventory(self.name, tuple(groups))


@dataclass(frozen=True)
class GuestSpec:
    count: int = 10000
    vcpus: tuple[int, ...] = (2, 4, 8)
    initial: float = 0.5


@dataclass(frozen=True)
class Rollout:
    label: str
    to: str
    frm: str | None
    groups: tuple[str, ...]
    start: dt.date
    waves: int
    every: int
    rollback: bool

    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=self.every * k) for k in range(self.waves)]


@dataclass(frozen=True)
class Plan:
    name: str
    start: dt.date
    end: dt.date
    placement: str
    guests: GuestSpec
    rollouts: tuple[Rollout, ...]


class _Where(Where):
    """Inventory and plan validation (errors name the file and the entry)."""

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key} must be a non-empty string, got {value!r}")
        check_name(value, self.fail)
        return value

    def integer(self, value: Any, key: str, minimum: int, maximum: int) -> int:
        if isinstance(value, str) and len(value) <= 32:
            try:
                value = int(value)
            except ValueError:
                pass
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(f"{key} must be an integer >= {minimum}, got {value!r}")
        if value > maximum:
            raise self.fail(f"{key} {value:,} is past the cap of {maximum:,}")
        return value

    def kernel(self, history: History, value: Any, key: str) -> str:
        name = self.string(value, key)
        if name not in history.releases and all(s.name != name for s in history.stable):
            raise self.fail(f"{key}: unknown kernel {name!r} (not a release or [[stable]] "
                            f"kernel of history {history.name!r})")
        return name

    def date(self, value: Any, key: str) -> dt.date:
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                pass
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise self.fail(f"{key} must be a date (YYYY-MM-DD), got {value!r}")
        return value


# -- inventory --------------------------------------------------------------------

def load_inventory(path: str | Path, history: History) -> Inventory:
    """Load and validate an inventory file (``.toml`` or ``.csv``) against ``history``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        doc = read_toml(path, "inventory")
        where = _Where(str(path))
        where.keys(doc, _INVENTORY_KEYS, {"group"})
        tables = doc["group"]
        if not isinstance(tables, list):
            raise where.fail("group must be an array of tables ([[group]])")
        name = doc.get("name", path.stem)
        if not isinstance(name, str) or not name:
            raise where.fail(f"name must be a non-empty string, got {name!r}")
        check_name(name, where.fail)
        rows = [(f"group #{n + 1}", t) for n, t in enumerate(tables)]
    elif suffix == ".csv":
        name, rows = path.stem, _csv_rows(path)
    else:
        raise InputError(f"{path}: an inventory must be a .toml or .csv file")
    return _inventory(str(path), name, rows, history)


def _csv_rows(path: Path) -> list[tuple[str, dict]]:
    text = files.read_text(path, "inventory")
    lines = [(n + 1, line) for n, line in enumerate(text.splitlines())
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{path}: empty inventory (expected a header line "
                         f"{','.join(_CSV_COLUMNS)})")
    try:
        records = list(csv.reader([line for _, line in lines], strict=True))
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    header = [c.strip() for c in records[0]]
    unknown = [c for c in header if c not in _CSV_COLUMNS]
    if unknown:
        raise InputError(f"{path}: line {lines[0][0]}: unknown column {unknown[0]!r} "
                         f"(known: {', '.join(_CSV_COLUMNS)})")
    if len(set(header)) != len(header):
        raise InputError(f"{path}: line {lines[0][0]}: a column is named twice")
    for col in ("group", "hosts", "kernel"):
        if col not in header:
            raise InputError(f"{path}: line {lines[0][0]}: missing column {col!r}")
    rows = []
    for (lineno, _), record in zip(lines[1:], records[1:]):
        if len(record) != len(header):
            raise InputError(f"{path}: line {lineno}: expected {len(header)} fields, "
                             f"got {len(record)}")
        fields = {k: v.strip() for k, v in zip(header, record) if v.strip()}
        if "group" in fields:
            fields["name"] = fields.pop("group")
        rows.append((f"line {lineno}", fields))
    return rows


def _inventory(origin: str, name: str, rows: list[tuple[str, Any]],
               history: History) -> Inventory:
    where = _Where(origin)
    if not rows:
        raise where.fail("no groups")
    if len(rows) > limits.GROUPS:
        raise where.fail(f"{len(rows):,} groups; at most {limits.GROUPS:,}")
    groups: list[Group] = []
    total = 0
    known_cpus = history.hosts()
    for label, t in rows:
        where.entry = label
        where.keys(t, _GROUP_KEYS, {"name", "hosts", "kernel"})
        gname = where.string(t["name"], "name")
        where.entry = f"{label}: group {gname!r}" if label.startswith("line") else f"group {gname!r}"
        if any(g.name == gname for g in groups):
            raise where.fail("duplicate group name")
        hosts = where.integer(t["hosts"], "hosts", 1, limits.HOSTS_PER_GROUP)
        total += hosts
        if total > limits.HOSTS:
            raise where.fail(f"the inventory has more than {limits.HOSTS:,} hosts")
        kernel = where.kernel(history, t["kernel"], "kernel")
        cpu = where.string(t.get("cpu", history.host), "cpu")
        if cpu not in known_cpus:
            raise where.fail(f"unknown host CPU profile {cpu!r} (known: {', '.join(known_cpus)})")
        vmm = t.get("vmm")
        if vmm is not None and not isinstance(vmm, str):
            raise where.fail(f"vmm must be a string, got {vmm!r}")
        if vmm is not None and vmm not in VMMS:
            raise where.fail(f"unknown VMM {vmm!r} (known: {', '.join(VMMS)})")
        groups.append(Group(gname, hosts, kernel, cpu, vmm))
    return Inventory(name, tuple(groups))


# -- plan ---------------------------------------------------------------------------

def load_plan(path: str | Path, history: History, inventory: Inventory) -> Plan:
    """Load and validate a rollout plan (TOML) against a history and an inventory."""
    path = Path(path)
    doc = read_toml(path, "plan")
    where = _Where(str(path))
    where.keys(doc, _PLAN_KEYS, {"start", "end", "rollout"})
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise where.fail(f"name must be a non-empty string, got {name!r}")
    check_name(name, where.fail)
    start, end = where.date(doc["start"], "start"), where.date(doc["end"], "end")
    if end < start:
        raise where.fail(f"end {end} is before start {start}")
    placement = doc.get("placement", PLACEMENTS[0])
    if not isinstance(placement, str) or placement not in PLACEMENTS:
        raise where.fail(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    guests = _guests(where, doc.get("guests", {}))
    tables = doc["rollout"]
    if not isinstance(tables, list) or not tables:
        raise where.fail("rollout must be a non-empty array of tables ([[rollout]])")
    if len(tables) > limits.ROLLOUTS:
        raise where.fail(f"{len(tables):,} rollouts; at most {limits.ROLLOUTS:,}")
    groups = {g.name for g in inventory.groups}
    rollouts = []
    for n, t in enumerate(tables):
        where.entry = f"rollout #{n + 1}"
        where.keys(t, _ROLLOUT_KEYS, {"to", "start"})
        to = where.kernel(history, t["to"], "to")
        label = where.string(t.get("label", f"to {to}"), "label")
        where.entry = f"rollout {label!r}"
        frm = where.kernel(history, t["from"], "from") if "from" in t else None
        chosen = t.get("groups", sorted(groups))
        if not isinstance(chosen, list) or not chosen:
            raise where.fail("groups must be a non-empty list of group names")
        for g in chosen:
            if not isinstance(g, str):
                raise where.fail(f"groups must be a list of group names, got {g!r}")
            if g not in groups:
                raise where.fail(f"unknown group {g!r} (inventory {inventory.name!r})")
        first = where.date(t["start"], "start")
        waves = where.integer(t.get("waves", 1), "waves", 1, limits.WAVES)
        every = where.integer(t.get("every", 7), "every", 1, limits.EVERY)
        if len(set(chosen)) != len(chosen):
            raise where.fail("groups names a group twice")
        older = (frm is not None and history.kernel(to)[0] < history.kernel(frm)[0])
        rollback = t.get("rollback", older)
        if not isinstance(rollback, bool):
            raise where.fail(f"rollback must be true or false, got {rollback!r}")
        r = Rollout(label, to, frm, tuple(chosen), first, waves, every, rollback)
        try:
            days = r.dates()
        except OverflowError:
            raise where.fail(f"waves run past the year 9999 (start {first})") from None
        for k, day in enumerate(days):
            if not start <= day <= end:
                raise where.fail(f"wave {k + 1} on {day} is outside {start}..{end}")
        rollouts.append(r)
    return Plan(name, start, end, placement, guests, tuple(rollouts))


def _guests(where: _Where, t: Any) -> GuestSpec:
    where.entry = "guests"
    where.keys(t, _GUEST_KEYS, set())
    default = GuestSpec()
    count = where.integer(t.get("count", default.count), "count", 0, limits.GUESTS)
    vcpus = t.get("vcpus", list(default.vcpus))
    if not isinstance(vcpus, list) or not vcpus:
        raise where.fail("vcpus must be a non-empty list of integers")
    if len(vcpus) > limits.VCPUS:
        raise where.fail(f"vcpus lists {len(vcpus):,} sizes; at most {limits.VCPUS}")
    vcpus = tuple(where.integer(v, "vcpus", 1, limits.VCPUS) for v in vcpus)
    initial = t.get("initial", default.initial)
    if isinstance(initial, bool) or not isinstance(initial, (int, float)) \
            or not 0 <= initial <= 1:       # NaN fails the comparison too
        raise where.fail(f"initial must be a number in 0..1, got {initial!r}")
    where.entry = ""
    return GuestSpec(count, vcpus, float(initial))
