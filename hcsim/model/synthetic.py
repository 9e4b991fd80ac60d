"""Synthetic kernel histories: plausible futures of the hypercall services.

:func:`generate` draws a :class:`~hcsim.model.history.History` from a few
parameters, seeded and deterministic: the same parameters and seed always
give the same history (and the same TOML from :func:`hcsim.model.history.dumps`).
``hcsim generate`` writes it as the TOML of DESIGN.md section 6.

The model
---------
* **Releases** ``r0`` .. ``r{n-1}``, not zero-padded: the name is the index
  (the order is the list order, never the lexical order), as in
  ``tests/data/four.toml`` and DESIGN.md section 6.
* **Arrivals.** Each release adds ``Poisson(rate)`` services (the background
  process).  With probability ``burst`` a release also lands a *family* of
  ``1 + Poisson(burst_size - 1)`` services (mean ``burst_size``) that share a
  space and a default, the way v5.13 added ``FUNC_FEAT`` and ``PTP`` to
  ``vendor-hyp`` and v6.15 added the two opt-in ``DISCOVER_IMPL_*``.  The
  mean number of services per release is ``rate + burst * burst_size``.
* **Spaces.** Each background service (each family) picks ``std``,
  ``std-hyp`` or ``vendor-hyp`` with the probabilities ``spaces``.
* **Functions.** Each service occupies ``1 + Geometric`` function numbers
  with mean ``functions`` (``functions = 1``: always one).
* **Opt-in.** Each background service (each family) is ``default = "off"``
  with probability ``opt_in``, like ``VENDOR_HYP_BMAP_2``.
* **registers_from**: a release index (``int``) or a fraction of the history
  (``float`` in [0, 1]: index ``floor(fraction * releases)``, at most the
  last release).
* **Firmware** (optional, ``firmware=P``): a ``PSCI_VERSION`` register from
  ``r0`` (reset 1.0 = ``0x10000``, accepts 0.2 and 1.0, ``on_write =
  "store"``); at each later release, with probability ``P``, the kernel
  implements the next minor version and makes it the reset value (as v5.18
  did with 1.1 and v6.13 with 1.3), so VMs created there cannot move back.
  ``firmware=None`` (default): no firmware register.

* **Other-register drift** (DESIGN.md section 9; optional, off by
  default): the history lists ``drift_base`` other registers (system
  registers with distinct made-up encodings) at ``r0``; at each later
  release, with probability ``drift_add`` a batch of ``1 + Geometric`` new
  ones (mean ``drift_add_size``) is added, and with probability
  ``drift_remove`` a batch (mean ``drift_remove_size``) of the listed ones
  is removed, chosen uniformly; a removed register does not come back.  The
  history then has ``[[other]]`` entries (:mod:`hcsim.model.other`).  With
  ``drift_add = drift_remove = 0`` (the default) the history has no other
  registers at all: today's hypercall-only model, and the same history as
  before drift existed.  :data:`LINUX_DRIFT` holds the rates fitted to the
  real lists (``data/linux-reglists.toml``; fit below).

* **Layout assumptions** (written to the history's top level,
  :mod:`hcsim.model.history`; they change no draw, only where bits go):
  ``space_registers`` ``"lazy"`` (default: a space's bitmap register is
  listed from its first service, DESIGN.md section 8) or ``"eager"`` (all
  three listed from ``registers_from``, as Linux did at v5.19, when every
  space already had a service); ``bits`` ``"dense"`` (default: one bit per
  service, packed) or ``"function-numbered"`` (a service's bit is its first
  function number, as the vendor bitmaps are: ``VENDOR_HYP_BMAP_2`` bit n is
  vendor function 64+n, so a register holds 64 function numbers, not 64
  services).  The defaults give the histories of before these parameters
  existed, TOML included.

Service names are ``{SPACE}_{NNNN}``, e.g. ``VENDOR_HYP_0007``: the space in
upper case and the service's global order of introduction (from 1, at least
four digits), so names are unique and say where a service lives.

Randomness: one :func:`numpy.random.default_rng` ``(seed)``, every draw made
up front in a fixed order (arrival counts, bursts, then per-service and
per-release uniforms whose sizes depend only on the counts; the drift draws
come last, so they never change the services).  So with the
same seed, ``releases``, ``rate``, ``burst`` and ``burst_size``, changing
``spaces``, ``functions``, ``opt_in``, ``firmware`` or ``registers_from``
changes only what that parameter governs (common random numbers), which keeps
parameter sweeps low-noise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from hcsim.errors import InputError
from hcsim.model.history import (
    BITS,
    SPACE_REGISTERS,
    Firmware,
    FwValues,
    History,
    Service,
    Where,
    assemble,
    check_name,
    check_size,
)
from hcsim.model.other import from_spans
from hcsim.model.smccc import FUNCTIONS_PER_SPACE, SPACES

SPACE_NAMES = tuple(SPACES)

#: PSCI_VERSION as the kernel encodes it (major << 16 | minor); FACTS.md 2.
PSCI_VERSION_ID = "0x6030000000140000"
PSCI_0_2 = 0x2
PSCI_1_0 = 0x10000

#: Refuse parameters whose expected size would not fit in memory sensibly.
MAX_EXPECTED_SERVICES = 1_000_000
MAX_RELEASES = 1_000_000

#: Default space mix: vendor-hyp is where Linux added most services.
DEFAULT_SPACES = (0.25, 0.25, 0.5)

#: Other-register drift fitted to Linux (``data/linux-reglists.toml``, vCPU
#: without a PMU, host neoverse-n1; any host gives the same lists): over the
#: 48 release steps v4.16 -> v7.3, other registers were *added* at 6 steps
#: (v5.3 +1 PMCR_EL0, v5.10 +1 ID_AA64ZFR0_EL1, v5.18 +1 OSLSR_EL1, v6.3 +11
#: CCSIDR demux, v6.4 +3 physical timer, v6.5 +3 TCR2/PIRE0/PIR: 20 ids) and
#: *removed* at 3 (v5.2 -1 ID_AA64ZFR0_EL1, v5.11 -74 PMU registers, v6.13
#: -3 TCR2/PIRE0/PIR: 78 ids); v4.16 lists 232.  Maximum-likelihood
#: estimates of the batch model: P(add) = 6/48 = 0.125, mean add size
#: 20/6 = 3.33; P(remove) = 3/48 = 0.0625, mean remove size 78/3 = 26.
#: (With a PMU vCPU: P(add) = 7/48, mean 3.0; P(remove) = 2/48, mean 2: the
#: 74 PMU registers stay.)
LINUX_DRIFT = {"drift_base": 232, "drift_add": 0.125, "drift_add_size": 20 / 6,
               "drift_remove": 0.0625, "drift_remove_size": 26.0}
NO_DRIFT = {"drift_base": 232, "drift_add": 0.0, "drift_add_size": 1.0,
            "drift_remove": 0.0, "drift_remove_size": 1.0}
#: Named drift presets (``--drift NAME``).
DRIFT_PRESETS = {"linux": LINUX_DRIFT, "none": NO_DRIFT}
#: System-register indices synthetic other registers are drawn from
#: (op0 = 2 or 3: the KVM_REG_ARM64_SYSREG encodings, 32768 of them).
_SYSREG_BASE = 0x6030000000130000
_SYSREG_INDICES = 0x8000
_DRIFT_FIRST = _SYSREG_BASE + 0x8000


def drift_ids() -> np.ndarray:
    """Every other-register id synthetic drift can draw, sorted (``uint64``)."""
    return _DRIFT_FIRST + np.arange(_SYSREG_INDICES, dtype=np.uint64)


def _number(name: str, value, low: float, high: float | None = None,
            integer: bool = False) -> float:
    """A finite number in [low, high], or InputError naming the parameter."""
    bad = isinstance(value, bool) or not isinstance(value, (int, float, np.number))
    try:
        bad = bad or not math.isfinite(value)
    except OverflowError:       # an int too large for a float
        bad = True
    if integer and not bad and not isinstance(value, (int, np.integer)):
        bad = not float(value).is_integer()
    if bad or value < low or (high is not None and value > high):
        span = f"{low:g}..{high:g}" if high is not None else f">= {low:g}"
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"{name} must be {kind} {span}, got {value!r}")
    return int(value) if integer else float(value)


def _spaces(value) -> tuple[float, float, float]:
    """Normalised probabilities over (std, std-hyp, vendor-hyp)."""
    if value is None:
        return DEFAULT_SPACES
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(SPACE_NAMES))
        if unknown:
            raise InputError(f"spaces: unknown space {unknown[0]!r} "
                             f"(known: {', '.join(SPACE_NAMES)})")
        weights = [value.get(s, 0.0) for s in SPACE_NAMES]
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        weights = list(value)
    else:
        raise InputError("spaces must be a mapping {space: weight} or three weights "
                         f"(std, std-hyp, vendor-hyp), got {value!r}")
    weights = [_number("spaces weight", w, 0.0) for w in weights]
    total = sum(weights)
    if total <= 0:
        raise InputError("spaces: at least one weight must be positive")
    return tuple(w / total for w in weights)


@dataclass(frozen=True)
class Params:
    """Validated generator parameters (see the module docstring).

    Construct through :func:`params` (or :func:`generate`), which checks
    every value and raises :class:`~hcsim.errors.InputError` on a bad one.
    """

    releases: int = 50
    rate: float = 0.25
    burst: float = 0.05
    burst_size: float = 2.0
    spaces: tuple[float, float, float] = DEFAULT_SPACES
    functions: float = 1.5
    opt_in: float = 0.1
    registers_from: int | float = 0.5
    firmware: float | None = None
    name: str | None = field(default=None, compare=False)
    drift_base: int = 232
    drift_add: float = 0.0
    drift_add_size: float = 1.0
    drift_remove: float = 0.0
    drift_remove_size: float = 1.0
    space_registers: str = SPACE_REGISTERS[0]
    bits: str = BITS[0]

    @property
    def drifts(self) -> bool:
        """Does the history get other registers (a drift rate above 0)?"""
        return self.drift_add > 0 or self.drift_remove > 0

    @property
    def registers_from_index(self) -> int:
        """The release index where feature registers start."""
        rf = self.registers_from
        if isinstance(rf, float):
            return min(int(rf * self.releases), self.releases - 1)
        return rf

    def columns(self) -> dict[str, float | int]:
        """The parameters as flat table columns (``registers_from`` as an index)."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("spaces", "name", "space_registers", "bits")
               and not k.startswith("drift")}
        if self.drifts:     # the columns of today's sweeps stay as they were
            out.update({k: v for k, v in asdict(self).items() if k.startswith("drift")})
        for key, choices in (("space_registers", SPACE_REGISTERS), ("bits", BITS)):
            if getattr(self, key) != choices[0]:     # likewise
                out[key] = getattr(self, key)
        out["registers_from"] = self.registers_from_index
        out["firmware"] = math.nan if self.firmware is None else self.firmware
        for space, p in zip(SPACE_NAMES, self.spaces):
            out["space_" + space.replace("-", "_")] = p
        return out

    def command(self, seed: int) -> str:
        """The ``hcsim generate`` command line that regenerates a history."""
        spaces = ",".join(f"{s}={p:g}" for s, p in zip(SPACE_NAMES, self.spaces))
        parts = [f"hcsim generate --releases {self.releases} --rate {self.rate:g}",
                 f"--seed {seed} --burst {self.burst:g} --burst-size {self.burst_size:g}",
                 f"--spaces {spaces} --functions {self.functions:g}",
                 f"--opt-in {self.opt_in:g} --registers-from {self.registers_from!r}"]
        if self.firmware is not None:
            parts.append(f"--firmware {self.firmware:g}")
        if self.drifts:
            parts.append(f"--drift-base {self.drift_base} --drift-add {self.drift_add:g} "
                         f"--drift-add-size {self.drift_add_size:g} "
                         f"--drift-remove {self.drift_remove:g} "
                         f"--drift-remove-size {self.drift_remove_size:g}")
        if self.space_registers != SPACE_REGISTERS[0]:
            parts.append(f"--space-registers {self.space_registers}")
        if self.bits != BITS[0]:
            parts.append(f"--bits {self.bits}")
        return " ".join(parts)

    def history(self, seed: int) -> History:
        """The history of this parameter set and ``seed``."""
        return _draw(self, seed)


def params(releases: int = 50, rate: float = 0.25, burst: float = 0.05,
           burst_size: float = 2.0, spaces=None, functions: float = 1.5,
           opt_in: float = 0.1, registers_from: int | float = 0.5,
           firmware: float | None = None, name: str | None = None,
           drift_base: int = 232, drift_add: float = 0.0, drift_add_size: float = 1.0,
           drift_remove: float = 0.0, drift_remove_size: float = 1.0,
           space_registers: str = SPACE_REGISTERS[0], bits: str = BITS[0]) -> Params:
    """Check generator parameters and return them as :class:`Params`."""
    for key, value, choices in (("space_registers", space_registers, SPACE_REGISTERS),
                                ("bits", bits, BITS)):
        if not isinstance(value, str) or value not in choices:
            raise InputError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    drift_base = _number("drift_base", drift_base, 0, _SYSREG_INDICES // 2, integer=True)
    drift_add = _number("drift_add", drift_add, 0.0, 1.0)
    drift_remove = _number("drift_remove", drift_remove, 0.0, 1.0)
    drift_add_size = _number("drift_add_size", drift_add_size, 1.0, 1000.0)
    drift_remove_size = _number("drift_remove_size", drift_remove_size, 1.0, 1000.0)
    releases = _number("releases", releases, 1, MAX_RELEASES, integer=True)
    rate = _number("rate", rate, 0.0)
    burst = _number("burst", burst, 0.0, 1.0)
    burst_size = _number("burst_size", burst_size, 1.0)
    functions = _number("functions", functions, 1.0, FUNCTIONS_PER_SPACE)
    opt_in = _number("opt_in", opt_in, 0.0, 1.0)
    if isinstance(registers_from, float):
        registers_from = _number("registers_from (a fraction)", registers_from, 0.0, 1.0)
    else:
        registers_from = _number("registers_from (a release index)", registers_from,
                                 0, releases - 1, integer=True)
    if firmware is not None:
        firmware = _number("firmware", firmware, 0.0, 1.0)
    expected = releases * (rate + burst * burst_size)
    if expected > MAX_EXPECTED_SERVICES:
        raise InputError(f"releases x (rate + burst x burst_size) = {expected:g} "
                         f"expected services; at most {MAX_EXPECTED_SERVICES}")
    if name is not None and (not isinstance(name, str) or not name):
        raise InputError(f"name must be a non-empty string, got {name!r}")
    return Params(releases, rate, burst, burst_size, _spaces(spaces), functions,
                  opt_in, registers_from, firmware, name, drift_base, drift_add,
                  drift_add_size, drift_remove, drift_remove_size, space_registers, bits)


def generate(releases: int = 50, rate: float = 0.25, seed: int = 0, burst: float = 0.05,
             burst_size: float = 2.0, spaces=None, functions: float = 1.5,
             opt_in: float = 0.1, registers_from: int | float = 0.5,
             firmware: float | None = None, name: str | None = None,
             **extra) -> History:
    """A synthetic history, the same for the same arguments.

    Parameters
    ----------
    releases : number of releases, named ``r0`` .. ``r{releases-1}``.
    rate : mean services per release of the Poisson background process.
    seed : seed of the one :class:`numpy.random.Generator` (integer >= 0).
    burst : probability that a release also lands a family of services.
    burst_size : mean size of a family (at least 1).
    spaces : weights over ``std``, ``std-hyp``, ``vendor-hyp``: a mapping
        ``{space: weight}`` or three numbers; normalised.  Default 1:1:2.
    functions : mean function numbers per service (shifted geometric).
    opt_in : probability that a service (a family) is ``default = "off"``.
    registers_from : release index (int) or fraction of the history (float).
    firmware : per-release probability of a ``PSCI_VERSION`` bump, or None
        for no firmware register.
    name : history name (default ``synthetic-{seed}``).
    extra : ``drift_base``, ``drift_add``, ``drift_add_size``, ``drift_remove``,
        ``drift_remove_size`` (other-register drift; e.g. ``**LINUX_DRIFT``);
        ``space_registers`` (``"lazy"``/``"eager"``) and ``bits``
        (``"dense"``/``"function-numbered"``), the layout assumptions.

    Examples
    --------
    >>> h = generate(releases=10, rate=1.0, seed=3)
    >>> h.releases[:3], h == generate(releases=10, rate=1.0, seed=3)
    (('r0', 'r1', 'r2'), True)
    """
    return params(releases, rate, burst, burst_size, spaces, functions, opt_in,
                  registers_from, firmware, name, **extra).history(seed)


def check_seed(seed) -> int:
    """A seed is an integer in 0..2**63-1 (:data:`hcsim.limits.SEED_MAX`).

    numpy's SeedSequence takes any size, but sweeps store seeds as int64:
    every command accepts the same range.
    """
    from hcsim import limits
    return limits.check_int("seed", seed, 0, limits.SEED_MAX)


def _draw(p: Params, seed: int) -> History:
    """The history, built from its parts: valid by construction, so it skips
    the validating reader (:func:`hcsim.model.history.from_dict`) that a file
    goes through; ``tests/test_synthetic.py::test_round_trip_and_invariants``
    checks that the reader makes the same history of its TOML."""
    rng = np.random.default_rng(check_seed(seed))
    n = p.releases
    # Every draw up front, in a fixed order (see the module docstring).
    background = rng.poisson(p.rate, n)
    bursts = rng.random(n) < p.burst
    family = 1 + rng.poisson(p.burst_size - 1.0, n)
    counts = background + np.where(bursts, family, 0)
    total = int(counts.sum())
    u_space, u_opt, u_fn = rng.random(total), rng.random(total), 1.0 - rng.random(total)
    u_family_space, u_family_opt = rng.random(n), rng.random(n)
    u_firmware = rng.random(n)

    cum = np.cumsum(p.spaces)
    cum[-1] = 1.0
    space = np.searchsorted(cum, u_space, side="right").tolist()
    off = (u_opt < p.opt_in).tolist()
    family_space = np.searchsorted(cum, u_family_space, side="right").tolist()
    family_off = (u_family_opt < p.opt_in).tolist()
    if p.functions > 1.0:
        q = 1.0 / p.functions
        fns = 1 + np.floor(np.log(u_fn) / math.log1p(-q))
        fns = np.minimum(fns, FUNCTIONS_PER_SPACE).astype(np.int64).tolist()
    else:
        fns = [1] * total

    releases = _release_names(n)
    width = max(4, len(str(total)))
    services, used = [], dict.fromkeys(SPACE_NAMES, 0)
    k = 0
    for rel, (count, bg) in enumerate(zip(counts.tolist(), background.tolist())):
        for j in range(count):
            in_family = j >= bg
            s = SPACE_NAMES[family_space[rel] if in_family else space[k]]
            default_off = family_off[rel] if in_family else off[k]
            used[s] += fns[k]
            if used[s] > FUNCTIONS_PER_SPACE:
                raise InputError(f"seed {seed}: space {s!r} needs more than "
                                 f"{FUNCTIONS_PER_SPACE} function numbers; lower "
                                 "rate, burst_size or functions")
            services.append(Service(f"{_PREFIX[s]}_{k + 1:0{width}d}", s, fns[k], rel,
                                    not default_off))
            k += 1

    name = p.name or f"synthetic-{seed}"
    firmware = () if p.firmware is None else (_psci(u_firmware < p.firmware),)
    other = from_spans(_drift(p, rng, n), releases) if p.drifts else None
    fail = Where(name).fail
    check_name(name, fail)
    check_size(fail, releases=n, entries=len(services) + len(firmware))
    return assemble(name, releases, p.registers_from_index, services, firmware,
                    source=p.command(seed), other=other,
                    space_registers=p.space_registers, bits=p.bits)


@functools.lru_cache(maxsize=4)
def _release_names(n: int) -> tuple[str, ...]:
    """``("r0", ..., "r{n-1}")`` (one tuple per length, shared by the histories)."""
    return tuple(f"r{k}" for k in range(n))


#: Service name prefix of each space: ``VENDOR_HYP`` for ``vendor-hyp``.
_PREFIX = {s: s.upper().replace("-", "_") for s in SPACE_NAMES}


def _sizes(rng: np.random.Generator, mean: float, n: int) -> np.ndarray:
    """``n`` batch sizes ``1 + Geometric`` with mean ``mean``."""
    if mean <= 1.0:
        return np.ones(n, np.int64)
    return rng.geometric(1.0 / mean, n).astype(np.int64)


def _drift(p: Params, rng: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    """Spans ``(id, first, end)`` of the other registers over ``n`` releases,
    sorted by id (the ``[[other]]`` entries): the base registers and the
    drawn drift."""
    adds = rng.random(n) < p.drift_add
    add_sizes = _sizes(rng, p.drift_add_size, n)
    removes = rng.random(n) < p.drift_remove
    remove_sizes = _sizes(rng, p.drift_remove_size, n)
    adds[0] = removes[0] = False
    total = min(_SYSREG_INDICES, p.drift_base + int(add_sizes[adds].sum()))
    ids = _DRIFT_FIRST + rng.choice(_SYSREG_INDICES, total, replace=False)
    # The register at position j of ids is added at release first[j] (the
    # base at r0, then each batch takes the next positions) and listed up to
    # end[j].  The listed registers, in order of addition, are the positions
    # added so far (below nxt) not yet removed: a removal draws among them.
    first = np.zeros(total, np.int64)
    first[p.drift_base:] = np.repeat(np.flatnonzero(adds), add_sizes[adds])[:total - p.drift_base]
    end = np.full(total, n, np.int64)
    nxt = p.drift_base
    add_sizes = add_sizes.tolist()
    for rel in np.flatnonzero(adds | removes).tolist():
        if removes[rel]:
            listed = np.flatnonzero(end[:nxt] == n)
            if len(listed):
                k = min(len(listed), int(remove_sizes[rel]))
                end[listed[rng.choice(len(listed), k, replace=False)]] = rel
        if adds[rel]:
            nxt = min(total, nxt + add_sizes[rel])
    order = np.argsort(ids)
    return list(zip(ids[order].tolist(), first[order].tolist(), end[order].tolist()))


def _psci(bumps: np.ndarray) -> Firmware:
    """A PSCI_VERSION-like entry whose reset moves to a new minor version at each bump."""
    accepts = [PSCI_0_2, PSCI_1_0]
    values = [(0, FwValues(PSCI_1_0, frozenset(accepts)))]
    for rel in (np.flatnonzero(bumps[1:]) + 1).tolist():
        if accepts[-1] & 0xFFFF == 0xFFFF:
            break
        accepts.append(accepts[-1] + 1)
        values.append((rel, FwValues(accepts[-1], frozenset(accepts))))
    return Firmware("PSCI_VERSION", int(PSCI_VERSION_ID, 16), 0, "store", tuple(values))


# --------------------------------------------------------------------------
# Command line: hcsim generate


