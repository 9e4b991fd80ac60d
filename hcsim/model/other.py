"""The *other* registers of a history (DESIGN.md section 9).

QEMU decides a migration over its whole cpreg list, every id of
``KVM_GET_REG_LIST`` except CORE and SVE; hcsim models the hypercall
registers (class 0x14 firmware, class 0x16 feature registers) itself.  The
rest, the *other* registers (DEMUX 0x11, SYSREG 0x13, ...), drift with the
release, the host CPU and the vCPU's features.  A history gets them from one
of two sources:

* ``reglists = "FILE"`` (top level, a path relative to the history file, else
  a data file hcsim ships, so an edited copy of the Linux history works): a
  register-list data file read by :func:`hcsim.model.reglists.load_reglists`
  (the Linux history points at ``linux-reglists.toml``: probed lists from
  ``data/kernel-probe/`` and cited changes in between).  A release of the
  history that the file does not know (a hypothetical next release, as
  ``hcsim what-if`` adds) lists what the latest earlier release it knows
  lists: no cited change; one before every known release is bad input.
* ``[[other]]`` entries, ``{ id = "0x...", introduced = "R", removed = "R" }``
  (``removed`` optional: listed until the last release): a register listed
  from ``introduced`` up to, not including, ``removed``.  An id may have
  several non-overlapping entries (a register that comes back).  These lists
  hold for every host and only for a vCPU without features; synthetic drift
  (:mod:`hcsim.model.synthetic`) writes them.

The values of other registers are opaque to hcsim: a VM reads the same value
on every kernel that lists the register, so they never change the guest
view; only their presence matters (QEMU's count check and sorted walk, a
snapshot writer's ``-ENOENT``).

A history without either behaves exactly as before: no other registers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from hcsim.errors import InputError
from hcsim.model.reglists import RegLists, is_other, sysreg_name

#: Register views: ``all`` (the whole list) and ``hypercall`` (other
#: registers taken as identical on both sides: the thread's question alone).
VIEWS = ("all", "hypercall")

#: The opaque value a VM reads from an other register (the same everywhere).
OPAQUE_VALUE = 0

NO_FEATURES: frozenset[str] = frozenset()


def feature_text(features: Iterable[str]) -> str:
    """``{pmu}``, ``{}``: a feature set as the messages spell it."""
    return "{" + ", ".join(sorted(features)) + "}"


def parse_features(text: str) -> frozenset[str]:
    """``pmu``, ``pmu+sve``, ``none`` or ``""``: a vCPU feature set."""
    text = text.strip()
    if text in ("", "none"):
        return NO_FEATURES
    parts = [p.strip() for p in text.replace(",", "+").split("+")]
    if not all(parts):
        raise InputError(f"bad vCPU feature set {text!r} (e.g. pmu, none)")
    return frozenset(parts)


@dataclass(frozen=True)
class OtherRegisters:
    """Other-register lists per release (index into the history), host and
    vCPU feature set.

    ``spans`` are the ``[[other]]`` entries ``(id, first, end)`` (``end``
    exclusive) over the releases ``names``; ``reglists`` a loaded data file
    looked up by release name.  ``hosts`` is empty when the lists do not
    depend on the host.
    """

    source: str
    names: tuple[str, ...]               # the history's release names
    feature_sets: tuple[frozenset[str], ...]
    hosts: tuple[str, ...] = ()
    spans: tuple[tuple[int, int, int], ...] = ()
    reglists: RegLists | None = field(default=None, compare=False, repr=False)
    lookup: tuple[str, ...] = ()          # reglists release of each history release
    _tables: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def _by_release(self) -> tuple[tuple[int, ...], ...]:
        """The spans' lists per release, made when first asked (the engine
        reads the spans as arrays instead: :func:`hcsim.evaluation.lists.listed_other`)."""
        hit = self._tables.get("by release")
        if hit is None:
            hit = self._tables["by release"] = _lists(self.spans, len(self.names))
        return hit

    def check_features(self, features: frozenset[str]) -> None:
        """:class:`InputError` unless the data covers the vCPU ``features``."""
        if features not in self.feature_sets:
            have = ", ".join(feature_text(f) for f in self.feature_sets)
            raise InputError(f"{self.source}: no register lists for vCPU features "
                             f"{feature_text(features)} (have {have})")

    def check(self, host: str, features: frozenset[str]) -> None:
        """:class:`InputError` unless the data covers ``host`` and ``features``."""
        self.check_features(features)
        if self.hosts and host not in self.hosts:
            raise InputError(f"{self.source}: no register lists for host {host!r} "
                             f"(hosts {', '.join(self.hosts)})")

    def at(self, release: int, host: str, features: frozenset[str] = NO_FEATURES
           ) -> tuple[int, ...]:
        """Sorted other ids a kernel of ``release`` lists for such a vCPU."""
        self.check(host, features)
        if self.reglists is None:
            return self._by_release[release]
        try:
            return self.reglists.other(self.lookup[release], host, features)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def table(self, host: str, features: frozenset[str] = NO_FEATURES
              ) -> tuple[tuple[int, ...], ...]:
        """:meth:`at` for every release (computed once per host and features)."""
        key = (host, features)
        hit = self._tables.get(key)
        if hit is None:
            if self.reglists is None:
                self.check(host, features)
                hit = self._by_release
            else:
                hit = tuple(self.at(r, host, features) for r in range(len(self.names)))
            self._tables[key] = hit
        return hit

    def since(self, start: int) -> OtherRegisters:
        """The same lists for the releases from ``start`` on (``History.since``)."""
        spans = tuple((rid, max(0, a - start), b - start) for rid, a, b in self.spans
                      if b > start)
        return OtherRegisters(self.source, self.names[start:], self.feature_sets,
                              self.hosts, spans, self.reglists, self.lookup[start:])

    def until(self, end: int) -> OtherRegisters:
        """The same lists for the releases up to index ``end``."""
        spans = tuple((rid, a, min(b, end + 1)) for rid, a, b in self.spans if a <= end)
        return OtherRegisters(self.source, self.names[:end + 1], self.feature_sets,
                              self.hosts, spans, self.reglists, self.lookup[:end + 1])

    def insert(self, at: int, name: str) -> OtherRegisters:
        """A release ``name`` inserted at index ``at`` (``at >= 1``), listing what
        the release before it lists (no cited change)."""
        spans = tuple((rid, a + (a >= at), b + (b >= at)) for rid, a, b in self.spans)
        lookup = (*self.lookup[:at], self.lookup[at - 1], *self.lookup[at:]) \
            if self.lookup else ()
        return OtherRegisters(self.source, (*self.names[:at], name, *self.names[at:]),
                              self.feature_sets, self.hosts, spans, self.reglists, lookup)

    def describe(self) -> str:
        return self.source


def _lists(spans: tuple[tuple[int, int, int], ...], n: int) -> tuple[tuple[int, ...], ...]:
    """The sorted ids listed at each of ``n`` releases: one step at each
    release where spans start or end (ids that end there leave, then those
    that start there come), the releases between sharing one tuple."""
    come = sorted(spans, key=_first)
    gone = sorted(spans, key=_end)
    starts = [s[1] for s in come]
    ends = [s[2] for s in gone]
    now: list[int] = []         # sorted
    lists: list[tuple[int, ...]] = []
    ids: tuple[int, ...] = ()
    for r in sorted(set(starts).union(ends)):
        if r >= n:
            break
        lists += [ids] * (r - len(lists))
        for s in gone[bisect_left(ends, r):bisect_right(ends, r)]:
            k = bisect_left(now, s[0])
            if k < len(now) and now[k] == s[0]:
                del now[k]
        lo, hi = bisect_left(starts, r), bisect_right(starts, r)
        if hi - lo > 8:         # a batch (the first release): sort once
            now += [s[0] for s in come[lo:hi]]
            now.sort()
        else:
            for s in come[lo:hi]:
                insort(now, s[0])
        ids = tuple(now)
    lists += [ids] * (n - len(lists))
    return tuple(lists)


_first = itemgetter(1)
_end = itemgetter(2)


def from_spans(spans, names: tuple[str, ...]) -> OtherRegisters:
    """Other registers listed over ``spans``, ``(id, first, end)`` with
    ``end`` exclusive, indices into ``names``: what ``[[other]]`` entries
    give (:func:`from_entries` checks the entries and calls this)."""
    return OtherRegisters("[[other]]", names, (NO_FEATURES,), (), tuple(spans))


def from_reglists(rl: RegLists, names: tuple[str, ...], origin: str) -> OtherRegisters:
    """Other registers of a history from a register-list data file."""
    lookup: list[str] = []
    for r in names:
        if r in rl.releases:
            lookup.append(r)
        elif lookup:
            lookup.append(lookup[-1])       # no cited change: as the release before
        else:
            raise InputError(f"{origin}: reglists {rl.path.name}: no list for release "
                             f"{r!r} (nor for any release before it)")
    return OtherRegisters(f"{rl.path.name}", names, tuple(rl.feature_sets), tuple(rl.hosts),
                          (), rl, tuple(lookup))


def from_entries(entries: list, names: tuple[str, ...], fail) -> OtherRegisters:
    """Other registers from ``[[other]]`` entries; ``fail(problem)`` builds the error."""
    if not isinstance(entries, list):
        raise fail("other must be an array of tables ([[other]])")
    spans: list[tuple[int, int, int]] = []
    index = {name: k for k, name in reversed(list(enumerate(names)))}
    by_id: dict[int, list[tuple[int, int]]] = {}
    for n, e in enumerate(entries):
        where = f"other #{n + 1}"
        if not isinstance(e, dict):
            raise fail(f"{where}: expected a table")
        unknown = sorted(set(e) - {"id", "name", "introduced", "removed", "source"})
        if unknown:
            raise fail(f"{where}: unknown key {unknown[0]!r}")
        text = e.get("id")
        try:
            rid = int(text, 16) if isinstance(text, str) and text.startswith("0x") else None
        except ValueError:
            rid = None
        if rid is None or rid >> 60 != 6 or rid >= 1 << 64:
            raise fail(f"{where}: id {text!r} is not a 0x KVM_REG_ARM64 id")
        if not is_other(rid):
            raise fail(f"{where}: id {text} is a CORE, SVE, firmware or feature "
                       "register, not an other register")
        if "name" in e and e["name"] != sysreg_name(rid):
            raise fail(f"{where}: name {e['name']!r} but {text} is {sysreg_name(rid)}")
        for key in ("introduced", "removed"):
            if key in e and (not isinstance(e[key], str) or e[key] not in index):
                raise fail(f"{where}: {key}: unknown release {e[key]!r}")
        if "introduced" not in e:
            raise fail(f"{where}: missing key 'introduced'")
        first = index[e["introduced"]]
        end = index[e["removed"]] if "removed" in e else len(names)
        if end <= first:
            raise fail(f"{where}: removed {e['removed']!r} is not after introduced")
        for a, b in by_id.get(rid, ()):
            if a < end and first < b:
                raise fail(f"{where}: {sysreg_name(rid)} is listed twice in {e['introduced']!r}")
        spans.append((rid, first, end))
        by_id.setdefault(rid, []).append((first, end))
    return from_spans(spans, names)
