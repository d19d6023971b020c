"""The Motor and Tortoise notes: from the guide, shown as snippets, NOT RUN here."""

from __future__ import annotations

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text

#: what the pane shows for the "notes" entry
NOTES = Group(
    Text(
        "These two are from the guide and are NOT RUN here: there is no MongoDB server on "
        "this machine and Tortoise ORM is not a dependency. The rules the other patterns "
        "show apply to both.",
        style="bold yellow",
    ),
    Text("\nMotor (async MongoDB): one client for the app, opened in the lifespan.", "bold"),
    Syntax(
        "from motor.motor_asyncio import AsyncIOMotorClient\n\n"
        "@asynccontextmanager\n"
        "async def lifespan(app: FastAPI):\n"
        "    # the client holds its own connection pool: create it once, not per request\n"
        '    app.state.mongo = AsyncIOMotorClient("mongodb://localhost:27017",\n'
        "                                         maxPoolSize=20, serverSelectionTimeoutMS=2000)\n"
        "    yield\n"
        "    app.state.mongo.close()\n\n"
        '@app.get("/users/{user_id}")\n'
        "async def get_user(user_id: str, request: Request):\n"
        '    user = await request.app.state.mongo.app.users.find_one({"_id": user_id})\n'
        "    if user is None:\n"
        "        raise HTTPException(404)\n"
        "    return user",
        "python",
        theme="ansi_dark",
    ),
    Text(
        "Motor has no per-request session to misuse, but the same pitfalls apply: a client "
        "per request (a pool per request), and no serverSelectionTimeoutMS (a request hangs "
        "30 s when MongoDB is down instead of failing fast).",
        style="dim",
    ),
    Text("\nTortoise ORM: an async ORM with Django-style models.", "bold"),
    Syntax(
        "from tortoise.contrib.fastapi import register_tortoise\n\n"
        "class User(Model):\n"
        "    id = fields.IntField(pk=True)\n"
        "    name = fields.CharField(80)\n\n"
        '@app.get("/users/{user_id}")\n'
        "async def get_user(user_id: int):\n"
        "    # prefetch_related avoids the N+1 queries the posts pattern shows\n"
        '    return await User.get(id=user_id).prefetch_related("orders")\n\n'
        'register_tortoise(app, db_url="postgres://...", modules={"models": [__name__]})',
        "python",
        theme="ansi_dark",
    ),
    Text(
        "register_tortoise opens and closes the connections with the app (the lifespan "
        "rule). Awaiting user.orders without prefetch_related is Tortoise's N+1.",
        style="dim",
    ),
)
