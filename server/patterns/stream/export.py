"""Streamed exports: CSV in batches from any keyset-paginated row source, an HTML report.

The CSV exporter takes a :class:`RowSource`, so the table is a parameter: today the job
history (:func:`sqlite_rows`), tomorrow any other. Each batch is one query
(``WHERE key > last ORDER BY key LIMIT n``: keyset pagination, constant cost per batch
however deep the export is, unlike ``OFFSET``) and becomes one chunk on the wire.

Every text cell starting with ``= + - @``, tab or carriage return gets a leading
apostrophe (OWASP's CSV-injection rule), so a spreadsheet shows it instead of running it.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

#: characters that make a spreadsheet treat a cell as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RowSource(Protocol):
    """Rows in key order, a batch at a time. The key is the first column."""

    columns: Sequence[str]

    async def rows_after(self, key: Any | None, limit: int) -> Sequence[Sequence[Any]]:
        """Up to ``limit`` rows whose key is above ``key`` (``None``: from the start)."""
        ...


def neutralise(cell: Any) -> Any:
    """A cell a spreadsheet will show, not evaluate."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


async def csv_batches(source: RowSource, batch: int) -> AsyncIterator[str]:
    """The header, then one CSV chunk per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in source.columns])
    key: Any | None = None
    while True:
        rows = await source.rows_after(key, batch)
        for row in rows:
            writer.writerow([neutralise(cell) for cell in row])
        if buffer.tell():
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if len(rows) < batch:
            return
        key = rows[-1][0]


class SqliteRows:
    """A table of a SQLite database as a :class:`RowSource` (one connection, read-only)."""

    def __init__(self, db: aiosqlite.Connection, table: str, columns: Sequence[str]) -> None:
        for name in (table, *columns):
            # Identifiers cannot be bound parameters: they come from code, and are checked.
            if not _IDENTIFIER.match(name):
                raise ValueError(f"not an identifier: {name!r}")
        self.columns: Sequence[str] = tuple(columns)
        key = columns[0]
        cols = ", ".join(columns)
        self._first = f"SELECT {cols} FROM {table} ORDER BY {key} LIMIT ?"
        self._next = f"SELECT {cols} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?"
        self._db = db

    async def rows_after(self, key: Any | None, limit: int) -> Sequence[Sequence[Any]]:
        if key is None:
            cursor = await self._db.execute(self._first, (limit,))
        else:
            cursor = await self._db.execute(self._next, (key, limit))
        async with cursor:
            return list(await cursor.fetchall())


@asynccontextmanager
async def sqlite_rows(path: Path, table: str, columns: Sequence[str]) -> AsyncIterator[SqliteRows]:
    """A read-only connection of its own for one export.

    Not the job store's connection: aiosqlite runs one connection's statements one after
    another on its thread, so a long export there would hold up the store's writes. WAL
    lets this reader and that writer work side by side.
    """
    async with aiosqlite.connect(f"file:{path}?mode=ro", uri=True) as db:
        yield SqliteRows(db, table, columns)


# -- HTML report ----------------------------------------------------------------------------

Section = tuple[str, Sequence[str], Sequence[Sequence[Any]]]

HEAD = (
    "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
    "<title>fastasync-explorer report</title></head><body>\n"
)
TAIL = "</body></html>\n"


def render_section(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """One ``<section>``: a heading and a table, every value escaped."""
    out = [f"<section><h2>{html.escape(title)}</h2>\n<table>\n<tr>"]
    out.extend(f"<th>{html.escape(str(c))}</th>" for c in columns)
    out.append("</tr>\n")
    for row in rows:
        out.append("<tr>")
        out.extend(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        out.append("</tr>\n")
    if not rows:
        out.append(f"<tr><td colspan={len(columns)}>(none)</td></tr>\n")
    out.append("</table></section>\n")
    return "".join(out)
