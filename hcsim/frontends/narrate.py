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
