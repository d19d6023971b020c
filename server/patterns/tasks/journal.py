"""The job history in SQLite: one aiosqlite connection, one writer task, batched commits.

The file is :func:`jobs_database` of the data directory. Besides the job store, the stream
pattern reads it (its CSV export opens a read-only connection of its own), so its name, its
table and its columns are public here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiosqlite

from server.errors import describe
from server.patterns.tasks.models import JobOut, Kind, Origin
from server.patterns.tasks.records import CRASHED, UNHEARD, Job, utc_now

log = logging.getLogger("fastasync.jobs")

#: the job history's file in the data directory
JOBS_FILE = "jobs.sqlite3"
#: its table, and the table's columns (a job's fields as the API shows them, id first)
JOB_TABLE = "jobs"
JOB_COLUMNS: tuple[str, ...] = tuple(JobOut.model_fields)
#: rows kept in SQLite; older ones are deleted when the store opens
DB_KEEP = 10_000
#: how long closing waits for the writer to save what is left
WRITER_STOP_S = 5.0


def jobs_database(data_dir: Path) -> Path:
    """The job history's SQLite file under ``data_dir``."""
    return data_dir / JOBS_FILE


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL,
    duration_s REAL NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms REAL,
    error TEXT,
    request_id TEXT,
    response_sent_ms REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""
#: every column but the id, which SQLite assigns
_NEW_COLUMNS = JOB_COLUMNS[1:]
_INSERT = (
    f"INSERT INTO jobs ({', '.join(_NEW_COLUMNS)}) VALUES ({', '.join('?' * len(_NEW_COLUMNS))})"
)
_UPDATE = (
    "UPDATE jobs SET state = ?, started_at = ?, finished_at = ?, duration_ms = ?, error = ?, "
    "response_sent_ms = ? WHERE id = ?"
)


class JobJournal:
    """Writes every job's changes to SQLite, in batches, off the store's hot path.

    Open with :meth:`open`; run :meth:`write_loop` in a task; :meth:`save` a changed job
    (it never waits); :meth:`close` with that task once no more changes come.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._dirty: dict[int, Job] = {}
        self._wake_writer = asyncio.Event()
        self._writer_stopping = False
        self._db_errors: set[str] = set()

    @classmethod
    async def open(cls, path: Path, history: int) -> tuple[JobJournal, list[Job]]:
        """Open (or create) the database at ``path``; the newest ``history`` jobs, oldest first.

        Jobs a previous process left pending or running never finished: they are marked
        "lost" before anything else happens.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit costs no fsync; a power cut may lose the last few
            # updates, never corrupt the file. Right for a history of demo jobs.
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.executescript(_SCHEMA)
            async with db.execute(
                "UPDATE jobs SET state = 'lost', error = ?, finished_at = COALESCE(finished_at, ?)"
                " WHERE state IN ('pending', 'running')",
                (CRASHED, utc_now()),
            ) as cursor:
                if cursor.rowcount:
                    log.warning("%d job(s) from a previous run were lost", cursor.rowcount)
            await db.execute(
                "DELETE FROM jobs WHERE id <= (SELECT MAX(id) FROM jobs) - ?", (DB_KEEP,)
            )
            await db.commit()
            rows = await db.execute_fetchall(
                f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY id DESC LIMIT ?", (history,)
            )
        except BaseException:
            await db.close()
            raise
        jobs = [Job(**dict(zip(JOB_COLUMNS, row, strict=True))) for row in reversed(list(rows))]
        return cls(db), jobs

    async def insert(
        self, kind: Kind, origin: Origin, duration_s: float, created_at: str, request_id: str | None
    ) -> int | None:
        """Record a new pending job; its id (the rowid). Raises what the driver raises."""
        values = (kind, origin, "pending", duration_s, created_at, *(None,) * 4, request_id, None)
        row = await self._db.execute_insert(_INSERT, values)
        await self._db.commit()
        return None if row is None else int(row[0])

    def save(self, job: Job) -> None:
        """Queue ``job``'s current state for the writer."""
        self._dirty[job.id] = job
        self._wake_writer.set()

    async def write_loop(self) -> None:
        """Write changed jobs in batches: many changes in one loop turn cost one commit."""
        while not (self._writer_stopping and not self._dirty):
            await self._wake_writer.wait()
            self._wake_writer.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._dirty = self._dirty, {}
        if not batch:
            return
        rows = [
            (
                j.state,
                j.started_at,
                j.finished_at,
                j.duration_ms,
                j.error,
                j.response_sent_ms,
                j.id,
            )
            for j in batch.values()
        ]
        try:
            await self._db.executemany(_UPDATE, rows)
            await self._db.commit()
        except Exception as exc:
            # Keep serving from memory; say so once per kind of failure, not per write.
            text = describe(exc)
            if text not in self._db_errors:
                self._db_errors.add(text)
                log.error("could not save %d job update(s): %s", len(rows), text)

    async def close(self, writer: asyncio.Task[None]) -> None:
        """Let ``writer`` save what is left and end, then the last safety net; close the db."""
        try:
            await self._stop_writer(writer)
        finally:
            await self._db.close()

    async def _stop_writer(self, writer: asyncio.Task[None]) -> None:
        """Let the writer save what is left and end; then the last safety net."""
        self._writer_stopping = True
        self._wake_writer.set()
        if not writer.done():
            try:
                await asyncio.wait_for(asyncio.shield(writer), timeout=WRITER_STOP_S)
            except TimeoutError:
                log.error("job writer did not finish in time; some updates were not saved")
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        await self._flush()  # in case the writer had crashed (already logged)
        try:
            # A pitfall record dropped from memory while still "running" is the only row
            # that can be unfinished here; it must not wait for the next start to be named.
            await self._db.execute(
                "UPDATE jobs SET state = 'lost', error = ?, finished_at = ?"
                " WHERE state IN ('pending', 'running')",
                (UNHEARD, utc_now()),
            )
            await self._db.commit()
        except Exception as exc:
            log.error("could not save the final job states: %s", describe(exc))
