"""Applying the team schema (aod/forward/schema/*.sql) to a PostgreSQL with yoyo.

The migrations create the schema, roles and row-level security, so they need an owner's rights
(CREATEROLE, CREATE on the database): `aod team migrate` runs them with an admin's dsn. The
forwarder of a member, who lacks those rights, finds them applied.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SOURCE = "package:aod:forward/schema"


def yoyo_url(dsn: str) -> str:
    """yoyo picks its driver by URL scheme: `postgresql+psycopg` is psycopg 3."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// URL: {parts.scheme}://…")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def migrate(dsn: str) -> list[str]:
    """Apply every pending team migration; the ids applied. Blocking: call off the loop."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(dsn))
    try:
        migrations = read_migrations(SOURCE)
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()
