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

from IPython.display import Markdown

# Verdicts and percentages are computed with the positions; re-exported for the notebooks.
from hcsim.analyses.positions import VERDICTS, pct


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


__all__ = ["VERDICTS", "md", "pct", "releases_span", "table", "verdict"]
