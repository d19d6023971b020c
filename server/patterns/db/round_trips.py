"""Round trips: a batch insert against one INSERT per row, prefetch against N+1.

Both pitfalls give the right answer; they only wait for the database many more times.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from server.deps import BlockingMode
from server.patterns.db.conn import Conn
from server.patterns.db.deps import ReadyDatabase, connection, unless_disconnected
from server.patterns.db.models import (
    BatchIn,
    BatchOut,
    CommentOut,
    InsertMethod,
    LoadStrategy,
    PostOut,
    PostsOut,
)
from server.patterns.db.seed import EVENTS_KEPT

router = APIRouter()

INSERT_EVENT = "INSERT INTO events (batch, seq, payload) VALUES ($1, $2, $3)"


async def insert_batch(conn: Conn, rows: list[tuple[str, int, str]]) -> None:
    """Right: every row in one ``executemany``, in one transaction."""
    async with conn.transaction():
        await conn.executemany(INSERT_EVENT, rows)


async def insert_row_by_row(conn: Conn, rows: list[tuple[str, int, str]]) -> None:
    """The pitfall: one awaited INSERT per row (a round trip each), in one transaction."""
    async with conn.transaction():
        for row in rows:
            await conn.execute(INSERT_EVENT, *row)


INSERTS = {"batch": insert_batch, "row_by_row": insert_row_by_row}


@router.post("/batch-insert", responses={503: {}})
async def batch_insert(body: BatchIn, db: ReadyDatabase, blocking: BlockingMode) -> BatchOut:
    """Insert ``rows`` events: in one batch, or row by row (blocking mode forces the latter)."""
    effective: InsertMethod = "row_by_row" if blocking else body.method
    batch = uuid.uuid4().hex[:12]
    rows = [(batch, i, f"event {i} of batch {batch}") for i in range(body.rows)]
    async with connection(db) as conn:
        began = time.perf_counter()
        await INSERTS[effective](conn, rows)
        elapsed = time.perf_counter() - began
        trips = conn.round_trips
        # Keep the scratch table bounded (not timed).
        await conn.execute(
            "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - $1", EVENTS_KEPT
        )
    assert db.target is not None
    ms = round(elapsed * 1000.0, 3)
    if effective == "batch":
        note = f"{body.rows} rows in one executemany: {trips} round trips in all."
    else:
        note = f"{body.rows} rows, one awaited INSERT each: {trips} round trips."
    return BatchOut(
        method=body.method,
        effective=effective,
        backend=db.target.backend,
        rows=body.rows,
        ms=ms,
        round_trips=trips,
        rows_per_s=round(body.rows / elapsed, 1) if elapsed > 0 else 0.0,
        note=note,
    )


# -- prefetch vs N+1 ------------------------------------------------------------------------------


async def posts_prefetch(conn: Conn, limit: int) -> list[PostOut]:
    """Right: the posts with their authors in one JOIN, all their comments in one IN query."""
    posts = await conn.fetch(
        "SELECT p.id, p.title, u.name AS author FROM posts p"
        " JOIN users u ON u.id = p.user_id ORDER BY p.id LIMIT $1",
        limit,
    )
    ids = [post["id"] for post in posts]
    comments = await conn.fetch(
        f"SELECT id, post_id, body FROM comments WHERE post_id {conn.in_list('$1')} ORDER BY id",
        conn.list_param(ids),
    )
    by_post: dict[int, list[CommentOut]] = {i: [] for i in ids}
    for c in comments:
        by_post[c["post_id"]].append(CommentOut(id=c["id"], body=c["body"]))
    return [PostOut(**post, comments=by_post[post["id"]]) for post in posts]


async def posts_n_plus_one(conn: Conn, limit: int) -> list[PostOut]:
    """The pitfall: one query for the posts, then two more for every post."""
    posts = await conn.fetch("SELECT id, title, user_id FROM posts ORDER BY id LIMIT $1", limit)
    out = []
    for post in posts:
        author = await conn.fetchval("SELECT name FROM users WHERE id = $1", post["user_id"])
        comments = await conn.fetch(
            "SELECT id, body FROM comments WHERE post_id = $1 ORDER BY id", post["id"]
        )
        out.append(
            PostOut(
                id=post["id"],
                title=post["title"],
                author=author,
                comments=[CommentOut(**c) for c in comments],
            )
        )
    return out


LOADERS = {"prefetch": posts_prefetch, "n_plus_one": posts_n_plus_one}


@router.get("/posts", responses={503: {}})
async def list_posts(
    request: Request,
    db: ReadyDatabase,
    blocking: BlockingMode,
    limit: Annotated[int, Query(ge=1, le=500, description="Posts to load (1 to 500).")] = 50,
    strategy: Annotated[LoadStrategy, Query(description="prefetch or n_plus_one.")] = "prefetch",
) -> PostsOut:
    """Posts with their authors and comments: prefetched, or N+1 (blocking mode)."""
    effective: LoadStrategy = "n_plus_one" if blocking else strategy

    async def load() -> tuple[list[PostOut], int, float]:
        async with connection(db) as conn:
            began = time.perf_counter()
            posts = await LOADERS[effective](conn, limit)
            return posts, conn.round_trips, time.perf_counter() - began

    posts, queries, elapsed = await unless_disconnected(request, load())
    assert db.target is not None
    if effective == "prefetch":
        note = f"{len(posts)} posts in {queries} queries: a JOIN and one IN list."
    else:
        note = f"{len(posts)} posts in {queries} queries: 1 for the posts + 2 per post."
    return PostsOut(
        strategy=strategy,
        effective=effective,
        backend=db.target.backend,
        posts=posts,
        queries=queries,
        ms=round(elapsed * 1000.0, 3),
        note=note,
    )
