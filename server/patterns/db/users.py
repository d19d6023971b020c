"""One row three ways: the lifespan pool, a pool per request (the pitfall), AsyncSession.

The ORM routes also show the session dependency's commit (``POST /db/orm/users``) and its
rollback (a duplicate email is a 409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from server.patterns.db.conn import Conn
from server.patterns.db.deps import (
    CONNECTION_LOST,
    PerRequestConn,
    ReadyDatabase,
    SessionDep,
    connection,
    unavailable,
)
from server.patterns.db.models import CreatedUser, NewUser, UserOut
from server.patterns.db.tables import Order, User

MAX_USER_ID = 2**31 - 1

router = APIRouter()

UserId = Annotated[int, Path(ge=1, le=MAX_USER_ID, description="A user id (1 to 2**31-1).")]


async def fetch_user(conn: Conn, user_id: int) -> dict[str, Any] | None:
    """One user and their order count, in one query."""
    return await conn.fetchrow(
        "SELECT u.id, u.name, u.email,"
        " (SELECT count(*) FROM orders o WHERE o.user_id = u.id) AS orders"
        " FROM users u WHERE u.id = $1",
        user_id,
    )


def no_such_user(user_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user with id {user_id}")


@router.get("/users/{user_id}", responses={404: {}, 503: {}})
async def get_user(user_id: UserId, db: ReadyDatabase) -> UserOut:
    """A row through a direct driver connection from the lifespan pool (right)."""
    async with connection(db) as conn:
        row = await fetch_user(conn, user_id)
        trips = conn.round_trips
    if row is None:
        raise no_such_user(user_id)
    return UserOut(**row, via="lifespan pool", round_trips=trips, connections_opened=0)


@router.get("/per-request-pool/users/{user_id}", responses={404: {}, 503: {}})
async def get_user_pool_per_request(user_id: UserId, conn: PerRequestConn) -> UserOut:
    """The same row through the guide's dependency: a new pool for this one request."""
    try:
        row = await fetch_user(conn, user_id)
    except CONNECTION_LOST as exc:
        raise unavailable(exc) from None
    if row is None:
        raise no_such_user(user_id)
    opened = int(getattr(conn, "opened", 0))
    return UserOut(
        **row, via="pool per request", round_trips=conn.round_trips, connections_opened=opened
    )


@router.get("/orm/users/{user_id}", responses={404: {}, 503: {}})
async def get_user_orm(user_id: UserId, session: SessionDep) -> UserOut:
    """The row through the SQLAlchemy ``AsyncSession`` dependency."""
    try:
        user = await session.get(User, user_id)
        if user is None:
            raise no_such_user(user_id)
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.user_id == user_id)
        )
    except (sa_exc.TimeoutError, *CONNECTION_LOST) as exc:
        raise unavailable(exc) from None
    return UserOut(
        id=user.id,
        name=user.name,
        email=user.email,
        orders=orders or 0,
        via="AsyncSession dependency",
        round_trips=int(session.info.get("queries", 0)),
        connections_opened=0,
    )


@router.post("/orm/users", status_code=201, responses={409: {}, 503: {}})
async def create_user_orm(body: NewUser, session: SessionDep) -> CreatedUser:
    """Insert through the session; a duplicate email is a 409 and the session rolls back.

    The handler only adds and flushes. The dependency commits once the handler returns,
    or rolls back when it raises (the 409 below passes through it on its way out).
    """
    user = User(name=body.name, email=body.email)
    session.add(user)
    try:
        await session.flush()
    except sa_exc.IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"email {body.email!r} is taken: rolled back"
        ) from None
    except (sa_exc.TimeoutError, *CONNECTION_LOST) as exc:
        raise unavailable(exc) from None
    return CreatedUser(id=user.id, name=user.name, email=user.email, committed=True)
