"""Missing await: a handler calls an ``async def`` helper without ``await``.

What the handler "got" is a coroutine object, not the row id; the helper's body never ran
(the row is never written), and when the coroutine is dropped CPython warns
``coroutine ... was never awaited``. The pitfall captures that warning in one synchronous
section (no ``await`` inside, so nothing else on the loop can see the filter change): origin
tracking on, the call, the object dropped, the warning recorded, never reaching the logs.

- ``POST /missing-await?form=right|pitfall``: one call of :func:`write_row`; the answer
  says what the handler got, the warning and the line that created the coroutine, and the
  table's row count before and after.
"""

from __future__ import annotations

import asyncio
import linecache
import sys
import warnings
from pathlib import Path
from typing import Annotated

import aiosqlite
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from server.deps import BlockingMode, provided
from server.patterns.correctness.models import Form, FormQuery, chosen

#: the demo's own SQLite file, under ``Settings.data_dir``
DB_FILE = "correctness.sqlite3"


class AuditLog:
    """The table the helper writes to: one SQLite connection for the app's life."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, data_dir: Path) -> AuditLog:
        """Open (and create) the table in ``data_dir``."""
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(data_dir / DB_FILE, isolation_level=None)
        await db.execute(
            "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"
        )
        return cls(db)

    async def rows(self) -> int:
        """How many rows the table holds."""
        async with self.db.execute("SELECT count(*) FROM audit") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection (the app is stopping)."""
        await self.db.close()


AuditDep = Annotated[AuditLog, Depends(provided(AuditLog))]


async def write_row(audit: AuditLog, note: str) -> int:
    """The helper: writes one audit row and returns its id (only if someone awaits it)."""
    cursor = await audit.db.execute("INSERT INTO audit (note) VALUES (?)", (note,))
    return int(cursor.lastrowid or 0)


class Warned(BaseModel):
    """The warning CPython gave when the un-awaited coroutine was dropped."""

    category: str
    message: str = Field(description="The warning's first line.")
    origin: str = Field(description="file:line in function: where the coroutine was created.")
    origin_line: str = Field(description="That line of source.")


class MissingAwaitOut(BaseModel):
    """What one call did."""

    form: Form
    got: str = Field(description="repr() of what the handler got from the call.")
    warning: Warned | None
    rows_before: int
    rows_after: int
    written: bool = Field(description="Whether the row was written (rows_after > rows_before).")


def call_without_await(audit: AuditLog) -> tuple[str, Warned | None]:
    """The pitfall, synchronous on purpose: call, keep the repr, drop it, record the warning.

    No ``await`` in here: the warning filter and the origin-tracking depth are process-wide,
    and nothing else runs on the loop until this returns.
    """
    depth = sys.get_coroutine_origin_tracking_depth()
    sys.set_coroutine_origin_tracking_depth(max(depth, 4))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = write_row(audit, "pitfall")  # the bug: no await
            shown = repr(got)
            origin = getattr(got, "cr_origin", None) or ()
            del got  # the last reference: CPython warns right here
    finally:
        sys.set_coroutine_origin_tracking_depth(depth)
    found = next((w for w in caught if "never awaited" in str(w.message)), None)
    if found is None:
        return shown, None
    file, line, function = origin[0] if origin else (found.filename, found.lineno, "?")
    return shown, Warned(
        category=found.category.__name__,
        message=str(found.message).splitlines()[0],
        origin=f"{Path(file).name}:{line} in {function}",
        origin_line=linecache.getline(file, line).strip(),
    )


router = APIRouter()


@router.post("/missing-await")
async def missing_await(
    audit: AuditDep, blocking: BlockingMode, form: FormQuery = None
) -> MissingAwaitOut:
    """Call the row-writing helper without ``await`` (pitfall) or with it (right)."""
    taken = chosen(form, blocking)
    before = await audit.rows()
    warned: Warned | None = None
    if taken == "pitfall":
        got, warned = call_without_await(audit)
    else:
        got = repr(await write_row(audit, "right"))
    after = await audit.rows()
    return MissingAwaitOut(
        form=taken,
        got=got,
        warning=warned,
        rows_before=before,
        rows_after=after,
        written=after > before,
    )
