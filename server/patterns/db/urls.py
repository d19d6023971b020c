"""Which database a URL names: the backend, the driver's DSN, and a form safe to show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Backend = Literal["sqlite", "postgresql"]

#: the SQLite file used when no URL is given (under ``Settings.data_dir``)
SQLITE_FILE = "explorer.sqlite3"

_PG_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class BadDatabaseUrl(ValueError):
    """The URL cannot name a database this app can use; the message says why."""


@dataclass(frozen=True)
class Target:
    """One database to connect to."""

    backend: Backend
    #: asyncpg's DSN (no ``schema`` parameter) or the SQLite file's path
    dsn: str
    #: PostgreSQL schema to work in (``?schema=`` in the URL); ``None``: the default
    schema: str | None = None

    @property
    def path(self) -> Path | None:
        return Path(self.dsn) if self.backend == "sqlite" else None

    @property
    def display(self) -> str:
        """The URL with any password hidden, plus the schema."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.dsn}"
        shown = mask_password(self.dsn)
        return f"{shown} (schema {self.schema})" if self.schema else shown

    @property
    def sqlalchemy_url(self) -> str:
        """The same database for SQLAlchemy's async engine."""
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.dsn}"
        parts = urlsplit(self.dsn)
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def mask_password(url: str) -> str:
    """``postgresql://user:***@host/db``: the URL as it may be logged or shown."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def default_target(data_dir: Path) -> Target:
    """The embedded default: an SQLite file in the data directory."""
    return Target("sqlite", str(data_dir / SQLITE_FILE))


def parse_url(url: str) -> Target:
    """A database URL to a :class:`Target`; :class:`BadDatabaseUrl` with the reason."""
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise BadDatabaseUrl(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme in _SQLITE_SCHEMES:
        # sqlite:///relative/or/absolute, as SQLAlchemy writes it
        path = text.split(":///", 1)[1] if ":///" in text else ""
        if not path:
            raise BadDatabaseUrl("an SQLite URL needs a file: sqlite:///path/to/file.sqlite3")
        return Target("sqlite", str(Path(path).expanduser()))
    if scheme not in _PG_SCHEMES:
        shown = scheme or "none"
        raise BadDatabaseUrl(
            f"unsupported scheme {shown!r}: use postgresql://user@host:port/db or sqlite:///file"
        )
    if not parts.hostname and "host=" not in parts.query:
        raise BadDatabaseUrl("a PostgreSQL URL needs a host: postgresql://user@host:5432/db")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise BadDatabaseUrl(f"bad port: {exc}") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is not None and not _SCHEMA.match(schema):
        raise BadDatabaseUrl(f"schema must be a plain lower-case identifier, not {schema!r}")
    rest = [(k, v) for k, v in query if k != "schema"]
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest)))
    return Target("postgresql", dsn, schema)
