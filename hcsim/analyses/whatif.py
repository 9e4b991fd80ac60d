"""What a proposed patch breaks: a hypothetical release against its predecessor.

A reviewer on kvmarm looks at a patch that adds a hypercall service (or
changes the register list) and asks which migrations it breaks.  hcsim
answers by inserting a hypothetical release ``NAME`` right after a release
``R`` of a history (default: the last one).  ``NAME`` is ``R`` plus the
patch: it inherits every service, firmware value and stable kernel of
``R``; the services the patch adds are introduced at ``NAME``, and releases
after ``R`` keep what they had and gain the patch too (the history is
linear: a patch merged in ``NAME`` is in every later release).

The comparison is pair by pair: for every other release ``X`` of the edited
history, ``X -> NAME`` against ``X -> R`` ("into") and ``NAME -> X`` against
``R -> X`` ("out"), with ``R`` itself as a partner (``R -> NAME`` against
``R -> R``, and ``NAME -> R`` against ``R -> R``).  A row whose outcome
differs is a migration the patch changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hcsim.errors import InputError
from hcsim.evaluation.backends import evaluate
from hcsim.model.history import History, Service, from_dict
from hcsim.model.strategies import Strategy
from hcsim.model.vmm import Vmm

#: Columns of :func:`what_if`'s table (and of ``hcsim what-if --format csv``).
COLUMNS = ("vmm", "direction", "partner", "before", "after", "changed",
           "gained", "lost", "detail")


SERVICE_SYNTAX = "NAME:SPACE[:off][:functions=N][:register=ID:bit=B]"


@dataclass(frozen=True)
class NewService:
    """A service the patch adds, as ``--service`` gives it.

    ``register``/``bit`` pin upstream's placement, as a history file's
    ``[[service]]`` may (the real v6.15 patch put its services in a new
    register, ``VENDOR_HYP_BMAP_2``, because bits follow function numbers).
    Fields are checked by the history file's own rules when the release is
    added.
    """

    name: str
    space: str
    default_on: bool = True
    functions: int | str = 1
    register: str | None = None
    bit: int | str | None = None

    @classmethod
    def parse(cls, text: str) -> NewService:
        parts = text.split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise InputError(f"--service {text!r}: expected {SERVICE_SYNTAX}")
        fields: dict = {"name": parts[0], "space": parts[1]}
        for item in parts[2:]:
            key, eq, value = item.partition("=")
            key = "default_on" if item == "off" else key
            if key in fields:
                raise InputError(f"--service {text!r}: {key!r} given twice")
            if item == "off":
                fields[key] = False
            elif eq and key in ("functions", "bit"):
                # ASCII digits only ('²'.isdigit() is true), and no more than
                # fit in 64 bits: the history check gives the real range.
                if not (value.isascii() and value.isdigit() and len(value) <= 20):
                    raise InputError(f"--service {text!r}: {key} must be an integer")
                fields[key] = int(value)
            elif eq and key == "register":
                fields[key] = value
            else:
                raise InputError(f"--service {text!r}: unknown field {item!r} "
                                 f"(expected {SERVICE_SYNTAX})")
        return cls(**fields)

    def table(self, introduced: str) -> dict:
        """The ``[[service]]`` table of a history file."""
        out = {"name": self.name, "space": self.space, "functions": self.functions,
               "introduced": introduced, "default": "on" if self.default_on else "off"}
        if self.register is not None:
            out["register"] = self.register
        if self.bit is not None:
            out["bit"] = self.bit
        return out


def until(history: History, release: str) -> History:
    """The history up to ``release`` (later releases, and what they add,
    dropped): the tree a reviewer had before the patch."""
    end = history.index(release)
    firmware = tuple(
        replace(f, values=tuple((r, v) for r, v in f.values if r <= end),
                host_values=tuple((r, t) for r, t in f.host_values if r <= end))
        for f in history.firmware if f.introduced <= end)
    return replace(
        history, name=f"{history.name} until {release}",
        releases=history.releases[:end + 1],
        registers_from=min(history.registers_from, end),
        services=tuple(s for s in history.services if s.introduced <= end),
        firmware=firmware, stable=tuple(st for st in history.stable if st.base <= end),
        fw_enoent_from=min(history.fw_enoent_from, end),
        other=None if history.other is None else history.other.until(end))


def add_release(history: History, name: str, after: str | None = None,
                services: tuple[NewService, ...] = ()) -> History:
    """``history`` with release ``name`` inserted after ``after`` (default:
    the last release), adding ``services`` there."""
    if not name or not name.isprintable() or any(c.isspace() for c in name):
        raise InputError(f"--add-release {name!r}: a release name is printable, "
                         "without spaces")
    if name in history.releases:
        raise InputError(f"history {history.name!r} already has a release {name!r}")
    at = history.index(after) if after is not None else len(history.releases) - 1
    def shift(rel: int) -> int:
        return rel + 1 if rel > at else rel

    kept = [replace(s, introduced=shift(s.introduced)) for s in history.services]
    releases = (*history.releases[:at + 1], name, *history.releases[at + 1:])
    new = list(_checked(kept, services, releases, at + 1, history.name))
    cut = next((k for k, s in enumerate(kept) if s.introduced > at + 1), len(kept))
    firmware = tuple(
        replace(f, introduced=shift(f.introduced),
                values=tuple((shift(r), v) for r, v in f.values),
                host_values=tuple((shift(r), t) for r, t in f.host_values))
        for f in history.firmware)
    stable = tuple(replace(st, base=shift(st.base),
                           firmware_release=tuple((n, shift(r)) for n, r in st.firmware_release))
                   for st in history.stable)
    edited = replace(
        history, name=f"{history.name} + {name}",
        releases=releases,
        registers_from=shift(history.registers_from),
        services=(*kept[:cut], *new, *kept[cut:]), firmware=firmware, stable=stable,
        fw_enoent_from=shift(history.fw_enoent_from),
        # the other registers of the new release: as the release before it
        other=None if history.other is None else history.other.insert(at + 1, name))
    return edited


def _checked(kept: list[Service], services: tuple[NewService, ...],
             releases: tuple[str, ...], at: int, name: str) -> tuple[Service, ...]:
    """The new services, checked with every existing one by the history
    file's own ``[[service]]`` rules (names, spaces, pins, function counts)."""
    tables = []
    for s in kept:
        old = {"name": s.name, "space": s.space, "functions": s.functions,
               "introduced": releases[s.introduced]}
        if s.register is not None:
            old |= {"register": f"0x{s.register:x}", "bit": s.bit}
        tables.append(old)
    tables += [s.table(releases[at]) for s in services]
    doc = {"name": name, "releases": list(releases), "service": tables}
    checked = {s.name: s for s in
               from_dict(doc, origin=f"--service ({name} + {releases[at]})").services}
    return tuple(replace(checked[s.name], source="hypothetical (hcsim what-if)")
                 for s in services)


def what_if(history: History, name: str, strategy: Strategy, vmms: list[Vmm],
            after: str | None = None, services: tuple[NewService, ...] = (),
            ) -> tuple[History, list[dict]]:
    """The edited history and one row per (VMM, direction, partner release).

    ``before`` is the outcome with the predecessor ``R``, ``after`` with the
    new release; ``gained``/``lost``/``detail`` are the new release's.
    """
    edited = add_release(history, name, after, services)
    new = edited.index(name)
    old = new - 1
    rows = []
    for vmm in vmms:
        outcomes = evaluate(edited, strategy, vmm)
        for direction in ("into", "out"):
            for partner in range(len(edited.releases)):
                if partner == new:
                    continue
                if direction == "into":
                    was = outcomes.migration(partner, old)
                    now = outcomes.migration(partner, new)
                else:
                    was = outcomes.migration(old, partner)
                    now = outcomes.migration(new, partner)
                rows.append({
                    "vmm": vmm.name, "direction": direction,
                    "partner": edited.releases[partner],
                    "before": was.outcome, "after": now.outcome,
                    "changed": (was.outcome, was.gained, was.lost)
                               != (now.outcome, now.gained, now.lost),
                    "gained": ";".join(sorted(now.gained)),
                    "lost": ";".join(sorted(now.lost)), "detail": now.detail})
    return edited, rows
