"""``hcsim compat``: QEMU machine-type compat lists for a range of kernels."""

from __future__ import annotations

import json

from hcsim.analyses import compat
from hcsim.errors import InputError
from hcsim.files import check_output, emit
from hcsim.frontends.commands import add_view, apply_view
from hcsim.model import history as history_mod
from hcsim.model import strategies
from hcsim.model.other import feature_text

FORMATS = ("text", "qemu", "toml", "json")
HIDE_NOTE = ("safe-missing already clears every list refusal, and hiding a "
             "register stops migrating it between kernels that both list it")


def add_compat(p):
    p.add_argument("--history", required=True, metavar="H",
                   help="history TOML path or bundled name (linux)")
    p.add_argument("--releases", required=True, metavar="R,R,...",
                   help="the host kernels of the machine type: names, or ranges A..B")
    p.add_argument("--strategy", default="upstream", metavar="S",
                   help="NAME[:k=v,...] (default: upstream)")
    p.add_argument("--host", metavar="P", help="host CPU profile")
    add_view(p)
    p.add_argument("--format", default="text", metavar="F",
                   help="text (72 columns), qemu (compat properties), toml, json")
    p.add_argument("--output", metavar="FILE",
                   help="write here (atomically) instead of stdout")
    p.set_defaults(func=run_compat)


def run_compat(args) -> int:
    if args.format not in FORMATS:
        raise InputError(f"unknown format {args.format!r} (known: {', '.join(FORMATS)})")
    check_output(args.output)
    history = history_mod.load(args.history)
    if args.host is not None:
        history = history.with_host(args.host)
    history = apply_view(history, args)
    strategy = strategies.parse(args.strategy)
    releases = compat.parse_releases(history, args.releases)
    found = compat.find(history, strategy, releases)
    render = {"text": text, "qemu": qemu, "toml": toml, "json": as_json}[args.format]
    emit(render(found), args.output)
    return 0


def _ids(values) -> str:
    return ",".join(f"0x{v:016x}" for v in values)


def qemu(c: compat.Compat) -> str:
    """The two CPU properties, ready for a machine type's compat list."""
    return (f"x-mig-hidden-regs={_ids(c.hidden)}\n"
            f"x-mig-safe-missing-regs={_ids(c.safe_missing)}\n")


def _record(c: compat.Compat) -> dict:
    names = c.history.releases
    features = c.history.features
    return {
        "history": c.history.name, "releases": [names[r] for r in c.releases],
        "host": c.history.host, "features": feature_text(features) if features else "none",
        "registers": c.history.registers, "strategy": c.strategy.spec,
        "pairs": c.pairs, "list_refusals_without": c.before,
        "hidden": [{"id": f"0x{r:016x}", "name": compat.name(r)} for r in c.hidden],
        "safe_missing": [{"id": f"0x{r:016x}", "name": compat.name(r),
                          "listed_on": c.where(r)[0], "absent_on": c.where(r)[1],
                          "care": c.marks[r]} for r in c.safe_missing],
        "still_refused": [{"src": names[s], "dst": names[d], "kind": kind, "cause": why,
                           "next_step": compat.next_step(kind)}
                          for s, d, kind, why in c.remaining],
    }


def as_json(c: compat.Compat) -> str:
    return json.dumps(_record(c), indent=2) + "\n"


def _q(text: str) -> str:
    return json.dumps(text)      # a TOML basic string is a JSON string


def toml(c: compat.Compat) -> str:
    r = _record(c)
    lines = [f"# hcsim compat, history {r['history']}, strategy {r['strategy']}",
             f"releases = [{', '.join(_q(x) for x in r['releases'])}]",
             f"host = {_q(r['host'])}", f"features = {_q(r['features'])}",
             f"hidden = [{', '.join(_q(x['id']) for x in r['hidden'])}]",
             "safe_missing = ["]
    lines += [f"  {_q(x['id'])},  # {x['name']}" for x in r["safe_missing"]]
    lines.append("]")
    for x in r["still_refused"]:
        lines += ["", "[[still_refused]]"] + [f"{k} = {_q(v)}" for k, v in x.items()]
    return "\n".join(lines) + "\n"


def text(c: compat.Compat) -> str:
    names = c.history.releases
    r = _record(c)
    lines = [f"hcsim compat: history {r['history']}, strategy {r['strategy']}",
             f"releases {', '.join(r['releases'])}"[:72],
             f"host {r['host']}, vCPU features {r['features']}, registers {r['registers']}",
             f"{c.pairs} ordered pairs; {c.before} refused by QEMU's register-list",
             "checks (count, sorted walk) without compat lists", "",
             f"x-mig-safe-missing-regs: {len(c.safe_missing)} ids, each needed",
             "(without any one of them some pair is refused again):"]
    by_care: dict[str, list[int]] = {}
    for rid in c.safe_missing:
        by_care.setdefault(c.marks[rid], []).append(rid)
    for care, ids in by_care.items():
        for rid in ids:
            has, lacks = c.where(rid)
            lines.append(f"  0x{rid:016x} {compat.name(rid)[:24]:<24} not on {lacks}"[:72])
        lines += [f"    {part}" for part in _wrap(care, 66)]
    lines += ["", "x-mig-hidden-regs: " + (_ids(c.hidden) or "none")]
    if not c.hidden:
        lines += [f"  {part}" for part in _wrap(HIDE_NOTE, 68)]
    lines += ["", f"still refused with these lists: {len(c.remaining)} pairs"]
    for s, d, kind, why in c.remaining:
        lines.append(f"  {names[s]:>7} -> {names[d]:<7} {why}"[:72])
        lines.append(f"      {compat.next_step(kind)}"[:72])
    lines += ["", "paste-ready properties: --format qemu"]
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return out + [line] if line else out
