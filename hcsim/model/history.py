"""Kernel histories: which hypercall services and firmware registers exist when.

A history is the TOML file of DESIGN.md section 6.  :func:`load` validates it
and rejects bad input with one :class:`~hcsim.errors.InputError` line naming
the file, the entry and the problem.  Releases are referred to by index
(0 = oldest) everywhere inside hcsim.

Extensions to DESIGN.md section 6 (documented in ``data/linux-upstream.md``):

* ``[[firmware]] no_psci_0_2 = {reset, accepts}``: what the register reads and
  takes on a vCPU initialised without ``KVM_ARM_VCPU_PSCI_0_2``.
* ``[[firmware]] hosts = {MODEL = {reset, accepts}}``: per host CPU profile
  (the ``SMCCC_ARCH_WORKAROUND_*`` levels); an unlisted profile uses the
  entry's own values.  A ``changes`` entry may give its own ``hosts``: that
  table replaces the profiles from its release on (``hosts = {}`` returns
  them all to the entry's values); a change without ``hosts`` keeps the
  profiles in force unchanged.  WORKAROUND_2's levels differ per profile on
  v5.3..v5.9 and are the same on every profile from v5.10.
* ``stores = "MASK"`` beside any ``reset``/``accepts`` of an ``on_write =
  "check"`` entry (top level, ``changes``, ``hosts``): bits the kernel keeps
  per vCPU (:class:`Firmware`); WORKAROUND_2's ENABLED bit (0x10) on
  v5.3..v5.9.  A change without ``stores`` keeps the previous value.
* ``fw_enoent_from = "R"`` (top level, default the first release): the
  release from which KVM answers a class 0x14 id it does not have with
  ``-ENOENT`` and SET copies the value in before looking the id up.  Before
  it, a kernel with firmware registers answers ``-EINVAL`` and looks the id
  up first (Linux: ``v5.3``, 99adb567632b; :mod:`hcsim.model.kvm`).
* ``host = "MODEL"`` (top level): the host CPU profile that migrations and
  costs are evaluated on (default ``max``).  The Linux history uses
  ``neoverse-n1``, a real server core whose workaround levels do not change
  across releases, so that ``-cpu max``'s v6.15 Spectre-BHB level change
  (e403e8538359) does not refuse every migration across v6.15.
* ``[[stable]] name, base, backports, backport_changes``: a stable or
  distribution kernel is a mainline release plus firmware entries backported
  from later releases (Debian's 5.10.0-32 has ``SMCCC_ARCH_WORKAROUND_3``,
  which behaves as at its introduction) and later ``changes`` of existing
  entries (``backport_changes = [{name, release}]``: the entry behaves as at
  that release; Debian's 6.1.0-56 has the v6.15 WORKAROUND_3 level change).
  Stable kernels are not part of the release order; they are hosts a VM can
  be created on (``probe-replay --release 5.10.0-32-arm64``).
* ``reglists = "FILE"`` and ``[[other]]``: the *other* registers each
  release lists (DESIGN.md section 9, :mod:`hcsim.model.other`).  A history
  without them has none, and behaves exactly as before.  ``History.registers``
  is the view (``all``: the whole list; ``hypercall``: other registers taken
  as identical on both sides) and ``History.features`` the vCPU feature set
  the lists are taken for (default: none, ``KVM_ARM_VCPU_PMU_V3`` is
  ``pmu``).
* ``space_registers = "lazy" | "eager"`` and ``bits = "dense" |
  "function-numbered"`` (top level): layout assumptions of the strategies
  that place bits themselves (:mod:`hcsim.model.strategies.upstream`,
  :mod:`~hcsim.model.strategies.reserved`).  ``lazy`` (default): a space's
  first bitmap register is listed from the release of the space's first
  service (DESIGN.md section 8); ``eager``: all three are listed from
  ``registers_from``, as Linux did at v5.19.  ``dense`` (default): one bit
  per service, packed in order of introduction; ``function-numbered``: a
  service's bit is its first function number (a service with ``functions =
  k`` uses up k bit positions), as the vendor bitmaps are (BMAP_2 bit n is
  vendor function 64+n), so a register fills after 64 function numbers,
  not 64 services.  Pinned services keep their pins either way.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

from hcsim import files, limits
from hcsim.errors import InputError
from hcsim.model import other as other_mod
from hcsim.model.other import NO_FEATURES, VIEWS, OtherRegisters, feature_text
from hcsim.model.regs import KVM_REG_ARM_FW, KVM_REG_ARM_FW_FEAT_BMAP, decode
from hcsim.model.smccc import FUNCTIONS_PER_SPACE, SPACES

#: Bundled histories, by the name the command line accepts.
BUNDLED = {"linux": "linux-upstream.toml"}

#: The register view of a history that has other-register data.
DEFAULT_VIEW = "all"

#: Name of the profile that an entry's own ``reset``/``accepts`` describe
#: (QEMU ``-cpu max``, as probed).
DEFAULT_HOST = "max"
#: Layout assumptions (top-level ``space_registers`` and ``bits``), default first.
SPACE_REGISTERS = ("lazy", "eager")
BITS = ("dense", "function-numbered")


@dataclass(frozen=True)
class Service:
    """A hypercall service: ``functions`` consecutive function numbers."""

    name: str
    space: str
    functions: int
    introduced: int
    default_on: bool = True
    register: int | None = None
    bit: int | None = None
    source: str = ""
    use: str = "runtime"
    use_source: str = ""


@dataclass(frozen=True)
class FwValues:
    """What a firmware register reads at reset and which values SET takes.

    ``stores``: bits of an ``on_write = "check"`` register that the kernel
    keeps per vCPU (WORKAROUND_2's ENABLED bit on v5.3..v5.9); see
    :class:`Firmware`.
    """

    reset: int
    accepts: frozenset[int]
    stores: int = 0


@dataclass(frozen=True)
class Firmware:
    """A firmware register of class 0x14 (``[[firmware]]``).

    ``values`` are the default profile's (``max``) values per release.
    ``host_values`` are the host profile tables, each from a release on: the
    entry's own ``hosts`` from its introduction, then every ``changes`` entry
    that gives ``hosts`` (it replaces the whole table; ``hosts = {}`` returns
    every profile to the default values).  ``hosts`` holds the profiles whose
    values are the same on every release (all of them when no change gives
    ``hosts``, as before the extension); the engine relies on that.

    A value with ``stores`` bits (``on_write = "check"`` only) reads
    ``reset & ~stores`` plus the vCPU's stored bits, which start as
    ``reset & stores``; an accepted write whose other bits equal the reset's
    sets them, other accepted writes leave them.  That is WORKAROUND_2 on
    v5.3..v5.9 (99adb567632b): a write of level AVAIL sets the vCPU's
    ENABLED flag from bit 4, lower levels leave it, and a read shows it.
    """

    name: str
    id: int
    introduced: int
    on_write: str
    values: tuple[tuple[int, FwValues], ...]   # (from release, values), sorted
    no_psci_0_2: FwValues | None = None
    hosts: dict[str, FwValues] = field(default_factory=dict)
    source: str = ""
    host_values: tuple[tuple[int, dict[str, FwValues]], ...] = ()

    def tables(self) -> tuple[tuple[int, dict[str, FwValues]], ...]:
        """Host profile tables, each from a release on (introduction first)."""
        return self.host_values or ((self.introduced, self.hosts),)

    def profiles(self) -> set[str]:
        """Every host profile any table of this entry names."""
        return {h for _, table in self.tables() for h in table}

    def at(self, release: int, host: str = DEFAULT_HOST,
           psci_0_2: bool = True) -> FwValues:
        """Reset value and accepted values on a kernel of ``release``."""
        if not psci_0_2 and self.no_psci_0_2 is not None:
            return self.no_psci_0_2
        table = self.tables()[0][1]
        for start, t in self.tables():
            if start <= release:
                table = t
        if host in table:
            return table[host]
        current = self.values[0][1]
        for start, vals in self.values:
            if start <= release:
                current = vals
        return current


@dataclass(frozen=True)
class Stable:
    """A stable kernel: a mainline base plus backported firmware entries."""

    name: str
    base: int
    firmware_release: tuple[tuple[str, int], ...]   # entry -> release it behaves as
    source: str = ""


@dataclass(frozen=True)
class History:
    """An ordered list of releases with the services and firmware they add."""

    name: str
    releases: tuple[str, ...]
    registers_from: int
    services: tuple[Service, ...]
    firmware: tuple[Firmware, ...] = ()
    stable: tuple[Stable, ...] = ()
    source: str = ""
    host: str = DEFAULT_HOST
    fw_enoent_from: int = 0
    other: OtherRegisters | None = None
    registers: str = DEFAULT_VIEW
    features: frozenset[str] = NO_FEATURES
    space_registers: str = SPACE_REGISTERS[0]
    bits: str = BITS[0]
    #: What consumers derive from this history and keep (the engine's
    #: per-history arrays): not part of its value, and empty in a copy
    #: (``dataclasses.replace`` makes a new one).
    memo: dict = field(default_factory=dict, init=False, compare=False, repr=False, hash=False)

    @property
    def has_other(self) -> bool:
        """Does the history say which other registers each release lists?"""
        return self.other is not None

    @property
    def whole(self) -> bool:
        """Are other registers part of the model (view ``all`` with data)?"""
        return self.other is not None and self.registers == "all"

    def other_at(self, release: int, host: str | None = None,
                 features: frozenset[str] | None = None) -> tuple[int, ...]:
        """Sorted other ids a kernel of ``release`` lists (none in the hypercall view)."""
        if not self.whole:
            return ()
        return self.other.at(release, host or self.host,
                             self.features if features is None else frozenset(features))

    def other_table(self) -> tuple[tuple[int, ...], ...] | None:
        """:meth:`other_at` of every release, or None in the hypercall view."""
        if not self.whole:
            return None
        return self.other.table(self.host, self.features)

    def with_registers(self, view: str) -> History:
        """The same history in view ``all`` or ``hypercall``."""
        if view not in VIEWS:
            raise InputError(f"unknown register view {view!r} (known: {', '.join(VIEWS)})")
        return replace(self, registers=view)

    def with_features(self, features) -> History:
        """The same history for vCPUs with ``features`` (a set of names).

        :class:`InputError` if the history has no lists for that feature set
        (a history without other-register data knows only ``{}``).
        """
        features = frozenset(features)
        if self.other is None:
            if features:
                raise InputError(f"history {self.name!r} has no register lists "
                                 f"(no reglists): no vCPU features {feature_text(features)}")
        else:
            self.other.check_features(features)
        return replace(self, features=features)

    def index(self, release: str) -> int:
        """Index of a release name; :class:`InputError` if unknown."""
        try:
            return self.releases.index(release)
        except ValueError:
            raise InputError(
                f"history {self.name!r}: unknown release {release!r}") from None

    def supported(self, release: int) -> tuple[Service, ...]:
        """Services a kernel of ``release`` implements."""
        return tuple(s for s in self.services if s.introduced <= release)

    def firmware_at(self, release: int, backports: dict[str, int] | None = None
                    ) -> list[tuple[Firmware, int]]:
        """Firmware a kernel lists, each with the release whose values it has.

        ``backports`` maps entry names to the release a stable kernel took
        them (or a later change of them) from.
        """
        backports = backports or {}
        out = []
        for f in self.firmware:
            at = max(release, backports.get(f.name, release))
            if f.introduced <= at:
                out.append((f, at))
        return out

    def kernel(self, name: str) -> tuple[int, dict[str, int]]:
        """(release index, backported entries) of a mainline or stable name."""
        for st in self.stable:
            if st.name == name:
                return st.base, dict(st.firmware_release)
        return self.index(name), {}

    def since(self, release: str) -> History:
        """The same history from ``release`` on (earlier releases dropped).

        Services and firmware introduced before ``release`` are supported from
        its first release, with the values they had at ``release``.
        """
        start = self.index(release)

        def shift(rel: int) -> int:
            return max(0, rel - start)

        services = tuple(replace(s, introduced=shift(s.introduced)) for s in self.services)
        firmware = []
        for f in self.firmware:
            at = max(start, f.introduced)
            first = f.at(at, DEFAULT_HOST)
            later = tuple((shift(r), v) for r, v in f.values if r > at)
            tables = f.tables()
            in_force = [t for r, t in tables if r <= at][-1]
            host_values = ((shift(f.introduced), in_force),
                           *((shift(r), t) for r, t in tables if r > at))
            firmware.append(replace(f, introduced=shift(f.introduced),
                                    values=((shift(f.introduced), first), *later),
                                    hosts=_constant_hosts(host_values),
                                    host_values=host_values if f.host_values else ()))
        stable = tuple(replace(st, base=st.base - start,
                               firmware_release=tuple((n, shift(r)) for n, r in st.firmware_release))
                       for st in self.stable if st.base >= start)
        return replace(self, name=f"{self.name} since {release}",
                       releases=self.releases[start:],
                       registers_from=shift(self.registers_from), services=services,
                       firmware=tuple(firmware), stable=stable,
                       fw_enoent_from=shift(self.fw_enoent_from),
                       other=None if self.other is None else self.other.since(start))

    def with_host(self, host: str) -> History:
        """The same history evaluated on host CPU profile ``host``.

        :class:`InputError` (one line) if no firmware entry knows it.
        """
        if host not in self.hosts():
            raise InputError(f"history {self.name!r}: unknown host profile {host!r} "
                             f"(known: {', '.join(self.hosts())})")
        return replace(self, host=host)

    def hosts(self) -> tuple[str, ...]:
        """Host CPU profiles the firmware entries know, default first."""
        names = {h for f in self.firmware for h in f.profiles()}
        return (DEFAULT_HOST, *sorted(names - {DEFAULT_HOST}))


# --------------------------------------------------------------------------
# Loading and validation

_TOP_KEYS = {"name", "releases", "registers_from", "service", "firmware",
             "stable", "source", "host", "fw_enoent_from", "reglists", "other",
             "space_registers", "bits"}
_SERVICE_KEYS = {"name", "space", "functions", "introduced", "default",
                 "register", "bit", "source", "use", "use_source"}
#: When a guest calls a service (``[[service]] use``): ``boot`` only (its
#: discovery and use happen once, in ``__init`` code, so losing it after
#: boot is harmless to a running guest) or at ``runtime`` (the default: a
#: loss after boot breaks calls the guest still makes).
USES = ("boot", "runtime")
_FIRMWARE_KEYS = {"name", "id", "introduced", "reset", "accepts", "on_write",
                  "changes", "no_psci_0_2", "hosts", "source", "stores"}
_CHANGE_KEYS = {"release", "reset", "accepts", "source", "stores", "hosts"}
_VALUES_KEYS = {"reset", "accepts", "stores"}
_STABLE_KEYS = {"name", "base", "backports", "backport_changes", "source"}


class Where:
    """One-line errors that name the file and the entry being read."""

    def __init__(self, origin: str):
        self.origin = origin
        self.entry = ""

    def fail(self, problem: str) -> InputError:
        where = f"{self.origin}: {self.entry}: " if self.entry else f"{self.origin}: "
        return InputError(where + problem)

    def keys(self, table: Any, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(table, dict):
            raise self.fail("expected a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r}")
        missing = sorted(required - set(table))
        if missing:
            raise self.fail(f"missing key {missing[0]!r}")
        return table


class _Checker(Where):
    """History validation: also knows the release names."""

    def __init__(self, origin: str, releases: tuple[str, ...] = ()):
        super().__init__(origin)
        self.releases = releases

    def string(self, table: dict, key: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or (not value and key == "name"):
            raise self.fail(f"{key} must be a non-empty string")
        if key == "name":
            check_name(value, self.fail)
        return value

    def release(self, table: dict, key: str) -> int:
        value = self.string(table, key)
        if value not in self.releases:
            raise self.fail(f"{key}: unknown release {value!r}")
        return self.releases.index(value)

    def hexnum(self, value: Any, what: str) -> int:
        """A number in 0..2**64-1, given as an integer or a (hex) string."""
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and len(value) <= 200:     # 0b + 64 digits + _
            try:
                number = int(value, 0)
            except ValueError:
                pass
        if number is None or number < 0:
            raise self.fail(f"{what} must be a non-negative number or hex string, "
                            f"got {value!r}")
        if number > limits.U64_MAX:
            raise self.fail(f"{what} {value!r} does not fit in 64 bits")
        return number

    def values(self, table: dict, base: FwValues | None) -> FwValues:
        if "reset" in table:
            reset = self.hexnum(table["reset"], "reset")
        elif base is not None:
            reset = base.reset
        else:
            reset = 0
        if "accepts" in table:
            acc = table["accepts"]
            if not isinstance(acc, list):
                raise self.fail("accepts must be a list")
            accepts = frozenset(self.hexnum(v, "accepts") for v in acc)
        elif base is not None:
            accepts = base.accepts
        else:
            accepts = frozenset({reset})
        if reset not in accepts:
            raise self.fail(f"reset 0x{reset:x} is not among accepts")
        if "stores" in table:
            stores = self.hexnum(table["stores"], "stores")
        else:
            stores = base.stores if base is not None else 0
        return FwValues(reset, accepts, stores)


def data_path(*parts: str) -> Path:
    """Path of a file shipped with hcsim: ``data_path("fleet-example", "plan.toml")``.

    The files are the repository's top-level ``data/``.  A wheel installs them
    as ``hcsim/data`` (pyproject.toml maps the package ``hcsim.data`` to
    ``data/``); a checkout (editable install, or on ``PYTHONPATH``) has them
    next to ``hcsim/``.  Both are found from the ``hcsim`` package that is
    actually imported, through :mod:`importlib.resources`, rather than by
    importing ``hcsim.data``: setuptools' editable finder does not map a
    package without ``__init__.py``, and two checkouts sharing one
    environment must each read their own files.
    """
    package = Path(importlib.resources.files("hcsim"))
    root = package / "data"
    if not root.is_dir():
        root = package.parent / "data"
    return root.joinpath(*parts)


def resolve(spec: str | Path) -> Path:
    """Path of a history given as a file path or a bundled name."""
    if isinstance(spec, str) and spec in BUNDLED:
        return data_path(BUNDLED[spec])
    return Path(spec)


def load(spec: str | Path, registers: str | None = None,
         features=None) -> History:
    """Load and validate a history file or bundled name (``linux``).

    ``registers``: the view, ``all`` (the default where the history has
    other-register data) or ``hypercall`` (:meth:`History.with_registers`);
    ``features``: the vCPU feature set, e.g. ``{"pmu"}``
    (:meth:`History.with_features`).
    """
    if isinstance(spec, str) and not spec:
        raise InputError("history: empty path")
    path = resolve(spec)
    history = from_dict(read_toml(path, "history"), origin=str(path))
    if registers is not None:
        history = history.with_registers(registers)
    if features is not None:
        history = history.with_features(features)
    return history


def read_toml(path: Path, what: str) -> dict:
    """Parse a TOML file; every way of failing is one InputError naming it.

    Bounded and depth-safe (:func:`hcsim.files.load_toml`): regular files of
    at most 16 MiB, nested at most 32 levels.
    """
    return files.load_toml(path, what)


def loads(text: str, origin: str = "<string>") -> History:
    """Load a history from TOML text."""
    return from_dict(files.loads_toml(text, origin), origin=origin)


def check_name(name: str, fail=InputError) -> str:
    """A name must be printable: no control characters (they break every table)."""
    bad = next((c for c in name if not c.isprintable()), None)
    if bad is not None:
        raise fail(f"name {name!r} contains a control character ({bad!r})")
    return name


def from_dict(doc: dict, origin: str = "<dict>") -> History:
    """Validate a parsed TOML document and build a :class:`History`."""
    ck = _Checker(origin)
    ck.keys(doc, _TOP_KEYS, {"releases"})
    name = doc.get("name", Path(origin).stem)
    if not isinstance(name, str) or not name:
        raise ck.fail(f"name must be a non-empty string, got {name!r}")
    if "name" in doc:           # (the default, the file's name, is the reader's own)
        check_name(name, ck.fail)
    rels = doc["releases"]
    if not isinstance(rels, list) or not rels:
        raise ck.fail("releases must be a non-empty list")
    check_size(ck.fail, releases=len(rels))
    for r in rels:
        if not isinstance(r, str) or not r:
            raise ck.fail(f"release names must be non-empty strings, got {r!r}")
        check_name(r, ck.fail)
    entries = sum(len(doc.get(k, [])) if isinstance(doc.get(k), list) else 0
                  for k in ("service", "firmware", "stable"))
    check_size(ck.fail, entries=entries)
    dup = _first_duplicate(rels)
    if dup is not None:
        raise ck.fail(f"duplicate release {dup!r}")
    ck.releases = tuple(rels)
    registers_from = ck.release(doc, "registers_from") if "registers_from" in doc else 0

    services = _services(ck, doc.get("service", []))
    firmware = _firmware(ck, doc.get("firmware", []))
    stable = _stable(ck, doc.get("stable", []), firmware, services)
    source = doc.get("source", "")
    if not isinstance(source, str):
        raise ck.fail("source must be a string")
    fw_enoent_from = (ck.release(doc, "fw_enoent_from")
                      if "fw_enoent_from" in doc else 0)
    host = doc.get("host", DEFAULT_HOST)
    if not isinstance(host, str):
        raise ck.fail(f"host must be a string, got {host!r}")
    known_hosts = {DEFAULT_HOST} | {h for f in firmware for h in f.profiles()}
    if host not in known_hosts:
        raise ck.fail(f"host {host!r} is not a profile of any [[firmware]] entry")
    other = _other(ck, doc, tuple(rels), origin)
    layout = {}
    for key, choices in (("space_registers", SPACE_REGISTERS), ("bits", BITS)):
        value = doc.get(key, choices[0])
        if value not in choices:
            raise ck.fail(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        layout[key] = value
    return assemble(name, tuple(rels), registers_from, services, firmware,
                    stable, source, host, fw_enoent_from, other, **layout)


def check_size(fail, releases: int = 0, entries: int = 0) -> None:
    """The size limits of a history (:mod:`hcsim.limits`); ``fail(problem)``
    builds the error."""
    if releases > limits.RELEASES:
        raise fail(f"{releases:,} releases; at most {limits.RELEASES:,}")
    if entries > limits.SERVICES:
        raise fail(f"{entries:,} service, firmware and stable entries; "
                   f"at most {limits.SERVICES:,}")


def assemble(name: str, releases: tuple[str, ...], registers_from: int,
             services, firmware: tuple[Firmware, ...] = (),
             stable: tuple[Stable, ...] = (), source: str = "", host: str = DEFAULT_HOST,
             fw_enoent_from: int = 0, other: OtherRegisters | None = None,
             space_registers: str = SPACE_REGISTERS[0], bits: str = BITS[0]) -> History:
    """The :class:`History` of parts already checked, as :func:`from_dict`
    builds it: services in order of introduction (by release, then the given
    order; DESIGN.md 8), the default view.

    :func:`from_dict` validates a document and calls this; the synthetic
    generator (:mod:`hcsim.model.synthetic`), whose parts are valid by
    construction, calls it directly.
    """
    services = tuple(sorted(services, key=_introduced))
    return History(name, releases, registers_from, services, firmware,
                   stable, source, host, fw_enoent_from, other,
                   "all" if other is not None and DEFAULT_VIEW == "all" else DEFAULT_VIEW,
                   NO_FEATURES, space_registers, bits)


_introduced = attrgetter("introduced")


def _other(ck: _Checker, doc: dict, names: tuple[str, ...], origin: str
           ) -> OtherRegisters | None:
    """``reglists`` / ``[[other]]`` (at most one of them), or None."""
    if "reglists" in doc and "other" in doc:
        raise ck.fail("give reglists or [[other]], not both")
    if "other" in doc:
        ck.entry = ""
        return other_mod.from_entries(doc["other"], names, ck.fail)
    if "reglists" not in doc:
        return None
    ref = doc["reglists"]
    if not isinstance(ref, str) or not ref:
        raise ck.fail("reglists must be a path (relative to the history file)")
    from hcsim.model.reglists import load_reglists
    path = Path(origin).parent / ref
    if not path.is_file() and data_path(ref).is_file():
        path = data_path(ref)       # a copy of a bundled history, e.g. an edited linux
    try:
        rl = _REGLISTS.get(path.resolve())
        if rl is None:
            rl = _REGLISTS[path.resolve()] = load_reglists(path)
    except ValueError as exc:
        raise ck.fail(f"reglists: {exc}") from None
    return other_mod.from_reglists(rl, names, origin)


#: Register-list files read so far, by resolved path (they are large and
#: immutable; every load of the Linux history shares one).
_REGLISTS: dict = {}


def _first_duplicate(items: list) -> Any:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def _table_list(ck: _Checker, value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ck.fail(f"{what} must be an array of tables ([[{what}]])")
    return value


def _services(ck: _Checker, tables: Any) -> list[Service]:
    out: list[Service] = []
    names: set[str] = set()
    pins: dict[tuple[int, int], str] = {}
    pinned_space: dict[int, str] = {}
    used: dict[str, int] = {}
    for n, t in enumerate(_table_list(ck, tables, "service")):
        ck.entry = f"service #{n + 1}"
        ck.keys(t, _SERVICE_KEYS, {"name", "space", "introduced"})
        name = ck.string(t, "name")
        ck.entry = f"service {name!r}"
        if name in names:
            raise ck.fail("duplicate service name")
        names.add(name)
        space = ck.string(t, "space")
        if space not in SPACES:
            raise ck.fail(f"unknown space {space!r} (std, std-hyp, vendor-hyp)")
        functions = t.get("functions", 1)
        if (not isinstance(functions, int) or isinstance(functions, bool)
                or not 1 <= functions <= FUNCTIONS_PER_SPACE):
            raise ck.fail(f"functions must be an integer in 1..{FUNCTIONS_PER_SPACE}")
        used[space] = used.get(space, 0) + functions
        if used[space] > FUNCTIONS_PER_SPACE:
            raise ck.fail(f"space {space!r} overflows: its services need "
                          f"{used[space]:,} function numbers, the space has "
                          f"{FUNCTIONS_PER_SPACE:,}")
        default = t.get("default", "on")
        if default not in ("on", "off"):
            raise ck.fail(f"default must be 'on' or 'off', got {default!r}")
        register = bit = None
        if ("register" in t) != ("bit" in t):
            raise ck.fail("register and bit must be given together")
        if "register" in t:
            register = ck.hexnum(t["register"], "register")
            d = decode(register)
            if (register >> 56 != 0x60 or d.coproc != KVM_REG_ARM_FW_FEAT_BMAP
                    or d.width != 64 or register & 0xFFFFFFFF0000 != 0x160000):
                raise ck.fail(f"register 0x{register:x} is not a U64 "
                              "KVM_REG_ARM_FW_FEAT_BMAP id")
            bit = t["bit"]
            if not isinstance(bit, int) or isinstance(bit, bool) or not 0 <= bit < 64:
                raise ck.fail(f"bit must be an integer in 0..63, got {bit!r}")
            if d.index < len(SPACES) and d.index != list(SPACES).index(space):
                raise ck.fail(f"register index {d.index} belongs to another space")
            owner = pinned_space.setdefault(d.index, space)
            if owner != space:
                raise ck.fail(f"register index {d.index} is pinned by space {owner!r}")
            if (d.index, bit) in pins:
                raise ck.fail(f"register 0x{register:x} bit {bit} is already "
                              f"pinned by {pins[(d.index, bit)]!r}")
            pins[(d.index, bit)] = name
        source = ck.string(t, "source", "")
        use = ck.string(t, "use", "runtime")
        if use not in USES:
            raise ck.fail(f"use must be 'boot' or 'runtime', got {use!r}")
        out.append(Service(name, space, functions, ck.release(t, "introduced"),
                           default == "on", register, bit, source, use,
                           ck.string(t, "use_source", "")))
    ck.entry = ""
    return out


def _firmware(ck: _Checker, tables: Any) -> tuple[Firmware, ...]:
    out: list[Firmware] = []
    names: set[str] = set()
    ids: set[int] = set()
    for n, t in enumerate(_table_list(ck, tables, "firmware")):
        ck.entry = f"firmware #{n + 1}"
        ck.keys(t, _FIRMWARE_KEYS, {"name", "id", "introduced"})
        name = ck.string(t, "name")
        ck.entry = f"firmware {name!r}"
        if name in names:
            raise ck.fail("duplicate firmware name")
        names.add(name)
        rid = ck.hexnum(t["id"], "id")
        d = decode(rid)
        if rid >> 56 != 0x60 or d.coproc != KVM_REG_ARM_FW or d.width != 64 \
                or rid & 0x000FFFFFF0000000:
            raise ck.fail(f"id 0x{rid:x} is not a U64 KVM_REG_ARM_FW register id")
        if rid in ids:
            raise ck.fail(f"duplicate firmware id 0x{rid:x}")
        ids.add(rid)
        introduced = ck.release(t, "introduced")
        on_write = t.get("on_write", "store")
        if on_write not in ("store", "check"):
            raise ck.fail(f"on_write must be 'store' or 'check', got {on_write!r}")
        first = ck.values(t, None)
        values = [(introduced, first)]
        tables = [(introduced, _host_table(ck, t.get("hosts", {})))]
        changes = t.get("changes", [])
        if not isinstance(changes, list):
            raise ck.fail("changes must be a list of tables")
        for change in changes:
            ck.keys(change, _CHANGE_KEYS, {"release"})
            start = ck.release(change, "release")
            if start <= values[-1][0]:
                raise ck.fail(f"change at {ck.releases[start]!r} is not after "
                              f"{ck.releases[values[-1][0]]!r}")
            values.append((start, ck.values(change, values[-1][1])))
            if "hosts" in change:
                tables.append((start, _host_table(ck, change["hosts"])))
        no_psci = None
        if "no_psci_0_2" in t:
            ck.keys(t["no_psci_0_2"], _VALUES_KEYS, {"reset"})
            no_psci = ck.values(t["no_psci_0_2"], None)
        for vals in [v for _, v in values] + [v for _, tb in tables for v in tb.values()]:
            if vals.stores and on_write != "check":
                raise ck.fail("stores is only for on_write = 'check'")
        host_values = tuple(tables) if len(tables) > 1 else ()
        out.append(Firmware(name, rid, introduced, on_write, tuple(values),
                            no_psci, _constant_hosts(tables), ck.string(t, "source", ""),
                            host_values))
    ck.entry = ""
    return tuple(sorted(out, key=lambda f: f.id))


def _host_table(ck: _Checker, tables: Any) -> dict[str, FwValues]:
    if not isinstance(tables, dict):
        raise ck.fail("hosts must be a table of host CPU profiles")
    out = {}
    for host, ht in tables.items():
        ck.keys(ht, _VALUES_KEYS, {"reset"})
        out[host] = ck.values(ht, None)
    return out


def _constant_hosts(tables) -> dict[str, FwValues]:
    """Profiles every table names with the same values (``Firmware.hosts``)."""
    tables = [t for _, t in tables]
    return {h: v for h, v in tables[0].items()
            if all(t.get(h) == v for t in tables[1:])}


def _stable(ck: _Checker, tables: Any, firmware: tuple[Firmware, ...],
            services: list[Service]) -> tuple[Stable, ...]:
    out = []
    fw_names = {f.name: f for f in firmware}
    svc_names = {s.name for s in services}
    for n, t in enumerate(_table_list(ck, tables, "stable")):
        ck.entry = f"stable #{n + 1}"
        ck.keys(t, _STABLE_KEYS, {"name", "base"})
        name = ck.string(t, "name")
        ck.entry = f"stable {name!r}"
        if name in ck.releases or any(s.name == name for s in out):
            raise ck.fail("duplicate kernel name")
        backports = t.get("backports", [])
        if not isinstance(backports, list):
            raise ck.fail("backports must be a list of firmware names")
        taken: dict[str, int] = {}
        for b in backports:
            if not isinstance(b, str):
                raise ck.fail(f"backports must be a list of firmware names, got {b!r}")
            if b in svc_names:
                raise ck.fail(f"backported service {b!r}: only firmware "
                              "entries can be backported")
            if b not in fw_names:
                raise ck.fail(f"backports: unknown firmware entry {b!r}")
            taken[b] = fw_names[b].introduced
        changes = t.get("backport_changes", [])
        if not isinstance(changes, list):
            raise ck.fail("backport_changes must be a list of {name, release}")
        for change in changes:
            ck.keys(change, {"name", "release"}, {"name", "release"})
            entry = fw_names.get(ck.string(change, "name"))
            if entry is None:
                raise ck.fail(f"backport_changes: unknown firmware entry "
                              f"{change['name']!r}")
            at = ck.release(change, "release")
            if at not in [start for start, _ in entry.values]:
                raise ck.fail(f"backport_changes: {entry.name!r} has no change "
                              f"at {ck.releases[at]!r}")
            taken[entry.name] = at
        out.append(Stable(name, ck.release(t, "base"), tuple(sorted(taken.items())),
                          ck.string(t, "source", "")))
    ck.entry = ""
    return tuple(out)


# --------------------------------------------------------------------------
# Writing

def _q(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def dumps(h: History) -> str:
    """TOML text of a history (firmware entries without host profiles)."""
    lines = [f"name = {_q(h.name)}",
             "releases = [" + ", ".join(_q(r) for r in h.releases) + "]",
             f"registers_from = {_q(h.releases[h.registers_from])}"]
    if h.source:
        lines.append(f"source = {_q(h.source)}")
    if h.host != DEFAULT_HOST:
        lines.append(f"host = {_q(h.host)}")
    if h.fw_enoent_from:
        lines.append(f"fw_enoent_from = {_q(h.releases[h.fw_enoent_from])}")
    if h.space_registers != SPACE_REGISTERS[0]:
        lines.append(f"space_registers = {_q(h.space_registers)}")
    if h.bits != BITS[0]:
        lines.append(f"bits = {_q(h.bits)}")
    for s in h.services:
        lines += ["", "[[service]]", f"name = {_q(s.name)}",
                  f"space = {_q(s.space)}", f"functions = {s.functions}",
                  f"introduced = {_q(h.releases[s.introduced])}",
                  f"default = {_q('on' if s.default_on else 'off')}"]
        if s.register is not None:
            lines += [f'register = "0x{s.register:016x}"', f"bit = {s.bit}"]
        if s.source:
            lines.append(f"source = {_q(s.source)}")
        if s.use != "runtime":
            lines.append(f"use = {_q(s.use)}")
        if s.use_source:
            lines.append(f"use_source = {_q(s.use_source)}")
    for f in h.firmware:
        first = f.values[0][1]
        lines += ["", "[[firmware]]", f"name = {_q(f.name)}",
                  f'id = "0x{f.id:016x}"',
                  f"introduced = {_q(h.releases[f.introduced])}",
                  f'reset = "0x{first.reset:x}"',
                  "accepts = [" + ", ".join(f'"0x{v:x}"' for v in sorted(first.accepts)) + "]",
                  f"on_write = {_q(f.on_write)}"]
        if first.stores:
            lines.append(f'stores = "0x{first.stores:x}"')
        if len(f.values) > 1:
            lines.append("changes = [")
            for (_, prev), (start, v) in zip(f.values, f.values[1:]):
                acc = ", ".join(f'"0x{a:x}"' for a in sorted(v.accepts))
                stores = f', stores = "0x{v.stores:x}"' if v.stores != prev.stores else ""
                lines.append(f'  {{ release = {_q(h.releases[start])}, '
                             f'reset = "0x{v.reset:x}", accepts = [{acc}]{stores} }},')
            lines.append("]")
    if h.other is not None and h.other.reglists is None:
        for rid, first, end in h.other.spans:
            lines += ["", "[[other]]", f'id = "0x{rid:016x}"',
                      f"introduced = {_q(h.releases[first])}"]
            if end < len(h.releases):
                lines.append(f"removed = {_q(h.releases[end])}")
    return "\n".join(lines) + "\n"
