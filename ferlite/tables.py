"""Plain-text tables for command summaries and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def crosstab(pairs: Sequence[tuple[str, str]], row_order: Sequence[str] = (), col_order: Sequence[str] = ()):
    """Count (row, column) pairs into a table with totals; returns (headers, rows)."""
    counts: dict[tuple[str, str], int] = {}
    for r, c in pairs:
        counts[(r, c)] = counts.get((r, c), 0) + 1
    rows_k = list(row_order) + sorted({r for r, _ in counts} - set(row_order))
    cols_k = list(col_order) + sorted({c for _, c in counts} - set(col_order))
    rows_k = [r for r in rows_k if any(counts.get((r, c)) for c in cols_k)]
    cols_k = [c for c in cols_k if any(counts.get((r, c)) for r in rows_k)]
    body = [[r] + [counts.get((r, c), 0) for c in cols_k] + [sum(counts.get((r, c), 0) for c in cols_k)]
            for r in rows_k]
    body.append(["total"] + [sum(counts.get((r, c), 0) for r in rows_k) for c in cols_k] + [len(pairs)])
    return ["", *cols_k, "total"], body


def printable(text: object) -> str:
    """``text`` safe to print as one line anywhere: bytes of a file name that are not UTF-8 (held as surrogate
    escapes) shown as ``\\xNN``, control characters (a newline in a name) escaped as ``\\n``."""
    s = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def format_counts(counts: Mapping[str, int]) -> str:
    """``truncated JPEG 3, not an image 2``: counts by kind, the most frequent first."""
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)
