"""``hcsim what-if``: the migrations a proposed patch changes (patch review)."""

from __future__ import annotations

import textwrap

from hcsim.analyses import whatif
from hcsim.errors import InputError
from hcsim.evaluation.outcomes import LETTERS, OUTCOMES
from hcsim.files import check_output, emit
from hcsim.frontends import tables
from hcsim.model import history as history_mod
from hcsim.model import strategies
from hcsim.model import vmm as vmm_mod

SHOWN = 24
#: Order of the changed pairs: what breaks a guest first.
SEVERITY = ("refused", "lost", "mixed", "unsupported", "gained", "preserved")


def add_what_if(p):
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    from hcsim.frontends.commands import add_view
    add_view(p)
    p.add_argument("--until", metavar="R",
                   help="drop the releases after R first (the tree before the patch)")
    p.add_argument("--add-release", required=True, metavar="NAME",
                   help="name of the hypothetical release")
    p.add_argument("--after", metavar="R",
                   help="insert it after release R (default: the last release)")
    p.add_argument("--service", action="append", default=[], metavar="SPEC",
                   help=f"a service the patch adds: {whatif.SERVICE_SYNTAX}; repeat")
    p.add_argument("--strategy", default="upstream", metavar="S",
                   help="NAME[:k=v,...] (default: upstream)")
    p.add_argument("--vmm", action="append", metavar="V",
                   help="VMM policy; repeat; default: every VMM")
    p.add_argument("--host", metavar="P", help="host CPU profile")
    p.add_argument("--format", default="text", metavar="F",
                   help="text (72 columns), csv, json, markdown")
    p.add_argument("--output", metavar="FILE",
                   help="write here (atomically) instead of stdout")
    p.set_defaults(func=run_what_if)


def run_what_if(args) -> int:
    tables.check_format(args.format)
    check_output(args.output)
    history = history_mod.load(args.history)
    from hcsim.frontends.commands import apply_view
    history = apply_view(history, args)
    if args.until is not None:         # --until "" is an unknown release, not "none"
        history = whatif.until(history, args.until)
    if args.host is not None:
        history = history.with_host(args.host)
    strategy = strategies.parse(args.strategy)
    vmms = [vmm_mod.parse(v) for v in (args.vmm or vmm_mod.REGISTRY)]
    services = tuple(whatif.NewService.parse(s) for s in args.service)
    if not services:
        raise InputError("what-if: give at least one --service")
    edited, rows = whatif.what_if(history, args.add_release, strategy, vmms,
                                  args.after, services)
    fmt = args.format
    if fmt == "csv":
        text = tables.to_csv(whatif.COLUMNS, rows)
    elif fmt == "json":
        text = tables.to_json(rows, history=history.name, release=args.add_release,
                              after=edited.releases[edited.index(args.add_release) - 1],
                              strategy=strategy.spec)
    elif fmt == "markdown":
        text = tables.to_markdown(whatif.COLUMNS, rows)
    else:
        text = render_text(history.name, edited, args.add_release, strategy.spec,
                           services, rows)
    emit(text, args.output)
    return 0


def render_text(name: str, edited, release: str, spec: str, services, rows) -> str:
    """Counts per VMM with the predecessor and with the new release, then the
    pairs that change; fits a 72-column email."""
    new = edited.index(release)
    old = edited.releases[new - 1]
    lines = [f"hcsim what-if: {release} after {old}, history {name}, strategy {spec}"]
    for s in services:
        what = [s.space, "on" if s.default_on else "off"]
        if s.functions != 1:
            what.append(f"{s.functions} functions")
        if s.register is not None:
            what.append(f"register {s.register} bit {s.bit}")
        lines.append(f"  adds {s.name} ({', '.join(what)})")
    partners = len(edited.releases) - 1
    w = len(str(partners)) + 1
    head = "".join(f"{LETTERS[o]:>{w}}" for o in OUTCOMES)
    lines += ["", "migrations into and out of the release, with the predecessor",
              f"and with the patch ({partners} partner releases each):", "",
              f"{'':<26}{'into':^{len(head)}}   {'out of':^{len(head)}}",
              f"{'VMM':<17}{'with':<9}{head}   {head}"]
    vmms = list(dict.fromkeys(r["vmm"] for r in rows))
    for vmm in vmms:
        mine = [r for r in rows if r["vmm"] == vmm]
        for label, key in ((old, "before"), (release, "after")):
            counts = []
            for direction in ("into", "out"):
                got = [r[key] for r in mine if r["direction"] == direction]
                counts.append("".join(f"{got.count(o):>{w}}" for o in OUTCOMES))
            first = vmm if key == "before" else ""
            lines.append(f"{first[:16]:<17}{label[:8]:<9}{counts[0]}   {counts[1]}")
    changed = sorted((r for r in rows if r["changed"]),
                     key=lambda r: SEVERITY.index(r["after"]))
    lines += ["", f"pairs that change: {len(changed)}"]
    for r in changed[:SHOWN]:
        pair = (f"{release} -> {r['partner']}" if r["direction"] == "out"
                else f"{r['partner']} -> {release}")
        why = r["detail"] or "; ".join(
            [f"+{g}" for g in filter(None, r["gained"].split(";"))]
            + [f"-{x}" for x in filter(None, r["lost"].split(";"))])
        lines.append(f"  {r['vmm']:<16} {pair:<22} {r['before']} -> {r['after']}"[:72])
        if r["blame"]:
            why = f"blame {r['blame']}: {why}"
        if why:
            lines += textwrap.wrap(why, 72, initial_indent=" " * 6,
                                   subsequent_indent=" " * 8, break_on_hyphens=False)
    if len(changed) > SHOWN:
        lines.append(f"  ... {len(changed) - SHOWN} more (use --format csv)")
    lines += ["", "P/G/L/M/R/U: preserved, gained, lost, mixed, refused, unsupported"]
    return "\n".join(lines) + "\n"
