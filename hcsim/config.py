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
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .history import History

Config = frozenset[str]


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
