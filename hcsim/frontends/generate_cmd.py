"""``hcsim generate``: synthetic history TOML, and the generator options ``sweep`` shares."""

from __future__ import annotations

import argparse

from hcsim import limits
from hcsim.errors import InputError
from hcsim.files import check_output, emit
from hcsim.model.history import BITS, SPACE_REGISTERS, check_name, dumps
from hcsim.model.synthetic import DRIFT_PRESETS, Params, check_seed, params


def number(text: str) -> float:
    """argparse type: a float (named for argparse's error message)."""
    try:
        return float(text)
    except ValueError:
        raise InputError(f"expected a number, got {text!r}") from None


def integer(text: str) -> int:
    """argparse type: an int."""
    try:
        return int(text)
    except ValueError:
        raise InputError(f"expected an integer, got {text!r}") from None


#: argparse type: a seed, 0..2**63-1.
seed = limits.argtype("seed", 0, limits.SEED_MAX)


def name(text: str) -> str:
    """argparse type: a history name, non-empty, no control characters."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    try:
        return check_name(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_registers_from(text: str) -> int | float:
    """``30`` (index), ``0.3`` (fraction) or ``r30`` (release name)."""
    if text.startswith("r") and text[1:].isdigit():
        return int(text[1:])
    if "." in text or "e" in text.lower():
        return number(text)
    return integer(text)


def parse_spaces(text: str) -> dict[str, float]:
    """``std=1,std-hyp=1,vendor-hyp=2`` (weights, normalised)."""
    out = {}
    for item in text.split(","):
        space, eq, weight = item.partition("=")
        if not eq:
            raise InputError(f"--spaces: expected SPACE=WEIGHT, got {item!r}")
        out[space.strip()] = number(weight)
    return out


def add_params(p: argparse.ArgumentParser) -> None:
    """The generator options, shared by ``generate`` and ``sweep``."""
    d = Params()
    p.add_argument("--releases", type=integer, default=d.releases, metavar="N",
                   help=f"number of releases (default {d.releases})")
    p.add_argument("--rate", type=number, default=d.rate, metavar="X",
                   help=f"mean services per release, Poisson (default {d.rate:g})")
    p.add_argument("--burst", type=number, default=d.burst, metavar="P",
                   help=f"probability a release lands a family of services (default {d.burst:g})")
    p.add_argument("--burst-size", type=number, default=d.burst_size, metavar="S",
                   help=f"mean family size (default {d.burst_size:g})")
    p.add_argument("--spaces", type=parse_spaces, default=None, metavar="W",
                   help="space weights, e.g. std=1,std-hyp=1,vendor-hyp=2 (the default)")
    p.add_argument("--functions", type=number, default=d.functions, metavar="M",
                   help=f"mean function numbers per service (default {d.functions:g})")
    p.add_argument("--opt-in", type=number, default=d.opt_in, metavar="P",
                   help=f"share of default-off services (default {d.opt_in:g})")
    p.add_argument("--registers-from", type=parse_registers_from, default=d.registers_from,
                   metavar="R", help="release index, rK, or fraction of the history "
                   f"(default {d.registers_from:g})")
    p.add_argument("--firmware", type=number, default=None, metavar="P",
                   help="add PSCI_VERSION; P = per-release probability of a version bump")
    p.add_argument("--drift", default=None, metavar="NAME",
                   help="other-register drift preset: linux (rates fitted to the real "
                        "register lists) or none (the default: no other registers)")
    for name, what in (("base", "other registers at the first release"),
                       ("add", "per-release probability of adding a batch"),
                       ("add-size", "mean size of an added batch"),
                       ("remove", "per-release probability of removing a batch"),
                       ("remove-size", "mean size of a removed batch")):
        p.add_argument(f"--drift-{name}", type=integer if name == "base" else number,
                       default=None, metavar="X", help=f"drift: {what} (overrides --drift)")
    p.add_argument("--space-registers", choices=SPACE_REGISTERS, default=SPACE_REGISTERS[0],
                   help="lazy (default): a space's bitmap register is listed from the "
                        "space's first service; eager: all three from --registers-from, "
                        "as Linux v5.19")
    p.add_argument("--bits", choices=BITS, default=BITS[0],
                   help="dense (default): one bit per service, packed; function-numbered: "
                        "a service's bit is its first function number, as the vendor "
                        "bitmaps (VENDOR_HYP_BMAP_2 bit n = vendor function 64+n)")


def params_from_args(args: argparse.Namespace) -> Params:
    """:class:`Params` from the options of :func:`add_params`."""
    preset = getattr(args, "drift", None) or "none"
    if preset not in DRIFT_PRESETS:
        raise InputError(f"--drift: unknown preset {preset!r} "
                         f"(known: {', '.join(DRIFT_PRESETS)})")
    drift = dict(DRIFT_PRESETS[preset])
    for key in drift:
        value = getattr(args, key, None)
        if value is not None:
            drift[key] = value
    return params(args.releases, args.rate, args.burst, args.burst_size, args.spaces,
                  args.functions, args.opt_in, args.registers_from, args.firmware,
                  getattr(args, "name", None), **drift,
                  space_registers=args.space_registers, bits=args.bits)


def add_generate(p: argparse.ArgumentParser) -> None:
    add_params(p)
    p.add_argument("--seed", type=seed, default=0, metavar="K",
                   help="seed (default 0; 0..2**63-1)")
    p.add_argument("--name", type=name, default=None,
                   help="history name (default synthetic-SEED; printable characters)")
    p.add_argument("--output", metavar="FILE",
                   help="write here (atomically) instead of stdout")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:

    check_output(args.output)
    history = params_from_args(args).history(check_seed(args.seed))
    emit(dumps(history), args.output)
    return 0
