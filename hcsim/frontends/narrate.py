"""Small display helpers for the design-report notebooks.

The notebooks state verdicts that are computed, not typed: a verdict is
rendered from the numbers of the history the notebook ran on, so the same
notebook rerun by ``hcsim report`` on a reader's history says what holds
there.  Everything returns an :class:`IPython.display.Markdown` object (text
compared by nbval, rendered in HTML) or a plain string; numbers are formatted
explicitly so outputs are identical on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from IPython.display import Markdown

# Verdicts and percentages are computed with the positions; re-exported for the notebooks.
from hcsim.analyses.positions import VERDICTS, pct

if TYPE_CHECKING:
    import pandas as pd

    from hcsim.analyses.baseline import Baseline

#: Scorecard columns shown by :func:`scorecard` (``hcsim.scorecard``'s names).
SCORECARD = ("strategy", "fwd_preserved", "bwd_preserved", "bwd_refused", "silent_loss",
             "bytes_per_vcpu", "pickup", "exhaustion")


def md(text: str) -> Markdown:
    """Markdown to display as a cell's result."""
    return Markdown(text)


def verdict(text: str) -> Markdown:
    """A bold verdict sentence a reader can quote."""
    return Markdown(f"**{text}**")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Markdown:
    """A Markdown table (pipes in cells escaped)."""
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def releases_span(releases: Sequence[str], indices: Iterable[int]) -> str:
    """Release names of ``indices``, joined, or ``none``."""
    names = [releases[k] for k in sorted(set(indices))]
    return ", ".join(names) if names else "none"


def baseline(b: Baseline) -> str:
    """A :func:`hcsim.baseline` as ``hcsim baseline`` prints it (72 columns)."""
    from hcsim.frontends.baseline_cmd import render

    return render(b, "text")


def formatted(frame: pd.DataFrame, percent: Sequence[str] = (),
              thousands: Sequence[str] = ()) -> pd.DataFrame:
    """A table to show: fractions in ``percent`` as ``12.3%``, counts in
    ``thousands`` as ``1,234`` (``-`` when missing); other columns kept."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if col in thousands:
            out[col] = ["-" if v is None or v is pd.NA or v != v else f"{int(v):,d}"
                        for v in out[col].astype(object)]
        elif col in percent:
            out[col] = [f"{100 * v:.1f}%" for v in out[col]]
    return out


def scorecard(card: pd.DataFrame, columns: Sequence[str] = SCORECARD) -> pd.DataFrame:
    """A :func:`hcsim.scorecard` to show: shares as ``12.3%``, bytes as ``1,234``.

    ``bytes_per_vcpu`` is ``-`` where the VMM cannot handle a register.
    """
    shown = card[list(columns)]
    return formatted(shown, percent=[c for c in shown.columns if shown[c].dtype.kind == "f"],
                     thousands=["bytes_per_vcpu"])


__all__ = ["SCORECARD", "VERDICTS", "baseline", "formatted", "md", "pct", "releases_span", "scorecard",
           "table", "verdict"]


# -- over many seeds and both host profiles (notebooks 02, 05, 07) ---------------------

def history_summary(h) -> dict:
    """One row describing a history: releases, ``registers_from``, services, and the
    feature registers ``upstream`` lists after ``registers_from`` (when, which)."""
    import hcsim
    from hcsim import regs

    after = [s for s in h.services if s.introduced > h.registers_from]
    first: dict[int, int] = {}
    for r in range(len(h.releases)):
        for rid in hcsim.registers(h, "upstream", r):
            if regs.is_feature(rid):
                first.setdefault(rid, r)
    new = [f"0x{rid:016x} at {h.releases[r]}" for rid, r in first.items() if r > h.registers_from]
    return {"history": h.name, "releases": f"{h.releases[0]}..{h.releases[-1]} ({len(h.releases)})",
            "registers_from": h.releases[h.registers_from], "services": len(h.services),
            "added later (default on / opt-in)":
                f"{sum(s.default_on for s in after)} / {sum(not s.default_on for s in after)}",
            "new upstream registers": ", ".join(new) or "none"}


def interval(summary, strategy: str, measure: str, vmm: str = "qemu") -> str:
    """``mean [low, high]`` of an :func:`hcsim.over_seeds` summary row, as percentages
    (the t interval of the mean over seeds)."""
    row = summary[(summary["strategy"] == strategy) & (summary["measure"] == measure)
                  & (summary["vmm"] == vmm)]
    if row.empty:
        raise KeyError(f"no row {strategy!r}, {measure!r}, {vmm!r} in the summary")
    r = row.iloc[0]
    return f"{pct(r['mean'])} [{pct(r['low'])}, {pct(r['high'])}]"


def tally(cases, unit: str = "seeds", show: int = 3) -> str:
    """Where a claim holds, said from per-case results (``{case: bool}``), not chosen.

    ``holds in all 30 seeds``, ``does not hold in any of 30 seeds``, or, where
    the evidence is mixed, ``mixed: holds in 21 of 30 seeds, not in 3, 8, 12, ...``.
    """
    cases = dict(cases)
    if not cases:
        raise ValueError("tally of no cases")
    n, bad = len(cases), [k for k, v in cases.items() if not v]
    every = "both" if n == 2 else f"all {n}"
    if not bad:
        return f"holds in {every} {unit}"
    if len(bad) == n:
        return f"does not hold in {'either of the 2' if n == 2 else f'any of {n}'} {unit}"
    names = ", ".join(str(b) for b in bad[:show]) + (", ..." if len(bad) > show else "")
    return f"mixed: holds in {n - len(bad)} of {n} {unit}, not in {names}"


def ranking(values, digits: int = 1) -> str:
    """``{name: share}`` as ``a 12.3% > b = c 4.0% > d 0.0%`` (largest first; equal
    shares at ``digits`` grouped), so prose about an order is read off the numbers."""
    groups: dict[str, list[str]] = {}
    for name, v in sorted(values.items(), key=lambda kv: -kv[1]):
        groups.setdefault(pct(v, digits), []).append(name)
    return " > ".join(f"{' = '.join(names)} {share}" for share, names in groups.items())


__all__ += ["history_summary", "interval", "ranking", "tally"]


def ci(values, fmt: str = "pct") -> str:
    """``mean [low, high]`` of values over futures: the Student's t 95% interval of
    the mean (:func:`hcsim.analyses.sensitivity.t_interval`); ``fmt`` ``pct`` or a
    format string such as ``"{:,.0f}"``."""
    from hcsim.analyses.sensitivity import t_interval

    show = pct if fmt == "pct" else fmt.format
    m, lo, hi = t_interval(values)
    return f"{show(m)} [{show(lo)}, {show(hi)}]"


__all__ += ["ci"]


def survival(results, default: str | None = None) -> str:
    """Whether a claim survives other assumptions, from ``{assumption: holds}``
    (bools) measured under each: ``survives all 4`` or ``fragile: ...`` naming the
    assumptions under which the answer differs from ``default`` (the first)."""
    results = dict(results)
    base = results[default if default is not None else next(iter(results))]
    changed = [k for k, v in results.items() if bool(v) != bool(base)]
    if not changed:
        return f"survives all {len(results)}"
    return (f"fragile: {'holds' if base else 'fails'} by default, "
            f"{'fails' if base else 'holds'} under {'; '.join(changed)}")


__all__ += ["survival"]


def baseline_row(b) -> dict:
    """A :func:`hcsim.baseline` as one table row: pairs safe, drifting and impossible,
    the services it gives up and the firmware values it pins lower, per host."""
    given = sorted({s for c in b.costs for s in c.given_up})
    fw = sorted({f"{n} {d:#x}->{v:#x} ({c.host})" for c in b.costs for n, d, v in c.firmware})
    return {"safe": sum(p.safe for p in b.pairs), "drift": len(b.drifting),
            "impossible": len(b.impossible), "services given up": ", ".join(given) or "-",
            "firmware": ", ".join(fw) or "-"}


__all__ += ["baseline_row"]
