"""VM configurations: which services the VMM turns off at VM creation.

A configuration is a set of service names.  ``--config`` accepts:

* ``default``: leave every register at its reset value;
* ``off:NAME[+NAME...]``: turn those services off;
* ``random:p=P,seed=K[,n=N]``: N configurations (default 1), each turning
  every service of the history off with probability P, drawn up front from
  ``numpy.random.default_rng(K)`` so the same spec always gives the same
  configurations.

A service is only turned off where the source kernel supports it and the
strategy gives it a bit; elsewhere the configuration has no effect.

:class:`Setting` extends a configuration for the fleet baseline
(:mod:`hcsim.analyses.baseline`): besides services turned off it can turn on services
whose ``default`` is ``off`` (opt-in, like ``VENDOR_HYP_BMAP_2``) and write
values to firmware registers (``PSCI_VERSION``).  :func:`hcsim.evaluation.spec.migrate`
and :func:`hcsim.evaluation.spec.configured_values` accept either form; a plain
``Config`` behaves exactly as before.  The vectorised engine takes plain
``Config`` sets only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hcsim import limits
from hcsim.errors import InputError
from hcsim.model.history import History

Config = frozenset[str]


@dataclass(frozen=True)
class Setting:
    """What a VMM writes at VM creation: services off, services on, firmware values.

    ``off``: services to clear (as a ``Config``); ``on``: services to set
    even where their ``default`` is ``off``; ``firmware``: (``[[firmware]]``
    name, value) pairs written with ``KVM_SET_ONE_REG`` where the kernel
    lists the register.  Like a ``Config``, every part only acts where the
    source kernel supports the service or lists the register.  An empty
    setting is false, as ``frozenset()`` is, and means "leave reset values".
    """

    off: frozenset[str] = frozenset()
    on: frozenset[str] = frozenset()
    firmware: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        both = sorted(self.off & self.on)
        if both:
            raise InputError(f"setting turns {both[0]!r} both on and off")
        names = [name for name, _ in self.firmware]
        if len(set(names)) != len(names):
            raise InputError("setting writes a firmware register twice")

    def __bool__(self) -> bool:
        return bool(self.off or self.on or self.firmware)


def parse(spec: str, history: History) -> list[Config]:
    """The configurations a ``--config`` spec names, for ``history``."""
    kind, _, rest = spec.partition(":")
    if spec == "default":
        return [frozenset()]
    if kind == "off" and rest:
        names = rest.split("+")
        known = {s.name for s in history.services}
        for name in names:
            if name not in known:
                raise InputError(f"config {spec!r}: unknown service {name!r}")
        return [frozenset(names)]
    if kind == "random":
        params = _kv(spec, rest, {"p", "seed", "n"})
        try:
            p = float(params.get("p", "0.2"))
            seed = int(params.get("seed", "0"))
            n = int(params.get("n", "1"))
        except ValueError:
            raise InputError(f"config {spec!r}: p must be a number, seed and n "
                             "integers") from None
        if not 0 <= p <= 1 or n < 1 or seed < 0:
            raise InputError(f"config {spec!r}: need 0 <= p <= 1, n >= 1, seed >= 0")
        if n > limits.RANDOM_CONFIGS or seed > limits.SEED_MAX:
            raise InputError(f"config {spec!r}: n is capped at {limits.RANDOM_CONFIGS:,}, "
                             f"seed at 2**63-1")
        return random_configs(history, p, seed, n)
    raise InputError(f"unknown config {spec!r} (default, off:NAME+NAME, "
                     "random:p=P,seed=K[,n=N])")


def _kv(spec: str, text: str, allowed: set[str]) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise InputError(f"config {spec!r}: unknown parameter {item!r} "
                             f"(known: {', '.join(sorted(allowed))})")
        out[key] = value
    return out


def random_configs(history: History, p: float, seed: int, n: int = 1) -> list[Config]:
    """``n`` configurations turning each service off with probability ``p``."""
    rng = np.random.default_rng(seed)
    draws = rng.random((n, len(history.services))) < p
    return [frozenset(s.name for s, off in zip(history.services, row) if off)
            for row in draws]
