"""Read the Markdown tables of ``benchmarks/results/*.md`` back as data (for notebook 03 and checks).

The benchmark scripts write their measurements as Markdown tables under headings that say what was
measured (``### N = 32,768 (B=2, ...)``, ``## H200 (measured ...)``). This module returns every table
with the headings above it, and turns cells such as ``0.242``, ``1,829``, ``**3.65x**``, ``39.7×`` or
``—`` into numbers (NaN for no number), so figures can be drawn from the stored results without copying
a value by hand.

Example:
    >>> table = parse_tables("## N = 4,096\\n\\n| op | ms |\\n| --- | ---: |\\n| ours | **0.146** |\\n")[0]
    >>> table.headings, table.tokens, table.frame()["ms"].tolist()
    (('N = 4,096',), 4096, [0.146])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from onconet.errors import OncoNetError

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_SEPARATOR_CELL = re.compile(r"^:?-+:?$")
#: a number, optionally signed, with thousands commas and a decimal part (1,829 / 0.242 / -3e-2)
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?$")
#: unit or ratio marks that may follow a number in a cell
_SUFFIXES = ("×", "x", "%", " ms", " s", " MiB", " GiB")
_TOKENS = re.compile(r"\bN\s*=\s*([\d,]+)")
_FLOORS = re.compile(r"^Floors: bytes .*?->\s*([\d.]+)\s*/\s*([\d.]+)\s*ms at the measured copy bandwidth")


class ResultsTableError(OncoNetError):
    """A results file holds a table that cannot be read (rows of the wrong width)."""


@dataclass(frozen=True, slots=True)
class MarkdownTable:
    """One table of a results file.

    Attributes:
        headings: the headings it lies under, outermost first (without the ``#`` marks).
        columns: the header cells.
        rows: the body cells, as written (Markdown emphasis kept).
        line: 1-based line number of its header row.
    """

    headings: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line: int

    @property
    def tokens(self) -> int | None:
        """The sequence length ``N = ...`` of the innermost heading that states one, else None."""
        for heading in reversed(self.headings):
            found = _TOKENS.search(heading)
            if found:
                return int(found.group(1).replace(",", ""))
        return None

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame: a column with at least one number as floats, the others as text.

        In a numeric column a cell without a number (``—``, ``skipped``, empty) becomes NaN; text cells
        lose their Markdown emphasis and code marks.
        """
        data: dict[str, list[object]] = {}
        for j, name in enumerate(self.columns):
            cells = [row[j] for row in self.rows]
            numbers = [number(c) for c in cells]
            numeric = any(not math.isnan(v) for v in numbers)
            data[name] = numbers if numeric else [plain(c) for c in cells]
        return pd.DataFrame(data)


def plain(cell: str) -> str:
    """A cell without Markdown emphasis (``**``, ``*``) and code marks (`````).

    Example:
        >>> plain("**end to end** (`infer`)")
        'end to end (infer)'
    """
    return cell.replace("**", "").replace("`", "").strip().strip("*").strip()


def number(cell: str) -> float:
    """The number a cell states, or NaN when it states none (or more than one, e.g. ``3.65x / 2.96x``).

    Example:
        >>> number("**1,829**"), number("39.7×"), number("31 %"), number("—"), number("1.1x / 2x")
        (1829.0, 39.7, 31.0, nan, nan)
        >>> number("2436 MiB (mask 1 GiB)")
        2436.0
    """
    text = re.sub(r"\s*\([^()]*\)$", "", plain(cell))  # a trailing remark: "2436 MiB (mask 1 GiB)"
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)].strip()
            break
    return float(text.replace(",", "")) if _NUMBER.match(text) else math.nan


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.strip() for cell in inner.split("|")]


def parse_tables(text: str, source: str = "<text>") -> list[MarkdownTable]:
    """Every table of a Markdown text, in order, with the headings each lies under.

    Raises:
        ResultsTableError: a body row has a different number of cells than the header.
    """
    lines = text.splitlines()
    headings: list[tuple[int, str]] = []  # (level, title) of the open headings
    tables: list[MarkdownTable] = []
    i = 0
    while i < len(lines):
        heading = _HEADING.match(lines[i])
        if heading:
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
            i += 1
            continue
        is_header = lines[i].lstrip().startswith("|") and i + 1 < len(lines)
        if is_header and all(_SEPARATOR_CELL.match(c) for c in _cells(lines[i + 1])):
            columns = _cells(lines[i])
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                row = _cells(lines[j])
                if len(row) != len(columns):
                    raise ResultsTableError(
                        f"{source}:{j + 1}: table row has {len(row)} cells, its header {len(columns)}"
                    )
                rows.append(tuple(row))
                j += 1
            tables.append(MarkdownTable(tuple(h[1] for h in headings), tuple(columns), tuple(rows), i + 1))
            i = j
            continue
        i += 1
    return tables


def read_tables(path: str | Path) -> list[MarkdownTable]:
    """Every table of a results file (see :func:`parse_tables`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ResultsTableError(f"{path}: cannot read the results file ({err.strerror})") from err
    return parse_tables(text, source=str(path))


def kernel_floors(path: str | Path) -> pd.DataFrame:
    """The memory-bandwidth floors ``benchmarks/kernels.py`` writes under each ``N = ...`` table.

    Returns:
        One row per ``Floors:`` line: ``tokens``, ``forward_ms``, ``fwd_bwd_ms`` (the time to move the
        op's bytes once at the measured copy bandwidth), and ``headings`` (where the line lies).
    """
    rows = []
    headings: list[tuple[int, str]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
            continue
        floors = _FLOORS.match(line)
        if floors and headings:
            tokens = _TOKENS.search(headings[-1][1])
            rows.append(
                {
                    "tokens": int(tokens.group(1).replace(",", "")) if tokens else None,
                    "forward_ms": float(floors.group(1)),
                    "fwd_bwd_ms": float(floors.group(2)),
                    "headings": " / ".join(h[1] for h in headings),
                }
            )
    return pd.DataFrame(rows, columns=["tokens", "forward_ms", "fwd_bwd_ms", "headings"])
