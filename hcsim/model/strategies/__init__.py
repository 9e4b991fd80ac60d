"""Register strategies, by the name the command line accepts.

``parse("wide:width=1024,ranges=2")`` validates the name and every parameter
and returns a :class:`~hcsim.model.strategies.base.Strategy`.
"""

from __future__ import annotations

from hcsim.errors import InputError
from hcsim.model.strategies.base import FeatureReg, Layout, Param, Strategy
from hcsim.model.strategies.full_bitmap import FullBitmap
from hcsim.model.strategies.reserved import RazEinval, RazWi, Wide
from hcsim.model.strategies.upstream import InvalidateOnWrite, Upstream

REGISTRY: dict[str, type[Strategy]] = {
    cls.name: cls for cls in
    (Upstream, InvalidateOnWrite, RazWi, Wide, FullBitmap, RazEinval)
}

#: Every strategy with default parameters, in scorecard order.
DEFAULTS = tuple(REGISTRY)


def parse(spec: str) -> Strategy:
    """Build a strategy from ``NAME[:k=v[,k=v]]``."""
    name, _, rest = spec.partition(":")
    if name not in REGISTRY:
        raise InputError(f"unknown strategy {name!r} (known: {', '.join(REGISTRY)})")
    cls = REGISTRY[name]
    values = {}
    for item in filter(None, rest.split(",")) if rest else ():
        key, eq, text = item.partition("=")
        if not eq:
            raise InputError(f"strategy {spec!r}: parameter {item!r} is not k=v")
        if key not in cls.params:
            known = ", ".join(cls.params) or "none"
            raise InputError(f"strategy {spec!r}: unknown parameter {key!r} "
                             f"(known: {known})")
        if key in values:
            raise InputError(f"strategy {spec!r}: parameter {key!r} given twice")
        values[key] = cls.params[key].parse(key, text, spec)
    if rest == "" and spec.endswith(":"):
        raise InputError(f"strategy {spec!r}: empty parameter list")
    return cls(**values)


__all__ = ["DEFAULTS", "REGISTRY", "FeatureReg", "Layout", "Param", "Strategy",
           "parse"]
