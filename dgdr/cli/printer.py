"""Tables as kubectl's printer writes them: plain columns, each as wide as its widest cell, three
spaces apart, never truncated and never wrapped, in a terminal of any width or in a pipe.

Pure: rows of strings in, lines out (`columns`); `Columns` keeps the widths of the first rows so
that the rows a watch prints later stay in step with the header when they fit. A cell's line
breaks and tabs become spaces (a row is one line).

Widths are terminal cells (a CJK character takes two, a combining mark none): rich's `cell_len`,
imported only for a cell that is not printable ASCII (one cell per character), so a `dgdr get` of
ASCII names does without rich.

Failure semantics: none; a row shorter than the header is padded with empty cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

GAP = "   "


def cell_len(text: str) -> int:
    """How many terminal cells `text` takes."""
    if text.isascii() and text.isprintable():
        return len(text)
    from rich.cells import cell_len as cells

    return cells(text)


def _clean(cell: str) -> str:
    return " ".join(cell.replace("\t", " ").splitlines()) if cell else ""


class Columns:
    """A table's header and rows, laid out with the widths of what it has seen so far."""

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers = list(headers)
        self.widths = [cell_len(h) for h in self.headers]

    def _fit(self, row: Sequence[str]) -> list[str]:
        cells = [_clean(c) for c in row] + [""] * (len(self.headers) - len(row))
        self.widths = [max(w, cell_len(c)) for w, c in zip(self.widths, cells, strict=False)]
        return cells

    def _line(self, cells: Sequence[str]) -> str:
        padded = (c + " " * (w - cell_len(c)) for c, w in zip(cells, self.widths, strict=False))
        return GAP.join(padded).rstrip()

    def lines(self, rows: Iterable[Sequence[str]], header: bool = True) -> list[str]:
        """The header (unless `header` is false) and `rows`, widths from all of them."""
        fitted = [self._fit(r) for r in rows]
        return ([self._line(self.headers)] if header else []) + [self._line(c) for c in fitted]

    def line(self, row: Sequence[str]) -> str:
        """One more row (a watch's change), aligned with what was printed; a wider cell widens its
        column from this row on."""
        return self._line(self._fit(row))


def columns(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The table as text, one line per row after the header, without a trailing newline."""
    return "\n".join(Columns(headers).lines(rows))
