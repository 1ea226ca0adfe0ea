"""User accounts and access grants (``skvo user ...``)."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from voservice.access import hash_password, hash_token
from voservice.model import access_grant, skvo_user


class UserError(ValueError):
    """An account operation that cannot be done (unknown user, duplicate)."""


def _user_id(conn: sa.Connection, name: str) -> int:
    user_id = conn.execute(
        sa.select(skvo_user.c.user_id).where(skvo_user.c.name == name)
    ).scalar()
    if user_id is None:
        raise UserError(f"no user named {name!r}")
    return user_id


def add_user(engine: sa.Engine, name: str, password: str | None = None,
             admin: bool = False) -> None:
    """Create an account (password optional: token-only accounts are fine)."""
    with engine.begin() as conn:
        exists = conn.execute(sa.select(skvo_user.c.user_id).where(skvo_user.c.name == name))
        if exists.first() is not None:
            raise UserError(f"user {name!r} exists already")
        conn.execute(
            skvo_user.insert().values(
                name=name,
                password_hash=hash_password(password) if password else None,
                is_admin=admin,
            )
        )


def remove_user(engine: sa.Engine, name: str) -> None:
    """Delete an account and its grants."""
    with engine.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(access_grant.delete().where(access_grant.c.user_id == user_id))
        conn.execute(skvo_user.delete().where(skvo_user.c.user_id == user_id))


def grant(engine: sa.Engine, name: str, source: str) -> None:
    """Let a user see and fetch all data of a source (collection)."""
    with engine.begin() as conn:
        user_id = _user_id(conn, name)
        present = conn.execute(
            sa.select(access_grant.c.user_id).where(
                access_grant.c.user_id == user_id, access_grant.c.source == source
            )
        ).first()
        if present is None:
            conn.execute(access_grant.insert().values(user_id=user_id, source=source))


def revoke(engine: sa.Engine, name: str, source: str) -> None:
    """Take a grant back."""
    with engine.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(
            access_grant.delete().where(
                access_grant.c.user_id == user_id, access_grant.c.source == source
            )
        )


def set_password(engine: sa.Engine, name: str, password: str) -> None:
    """Give an account a new password; the old one stops working on the next request."""
    if not password:
        raise UserError("the new password is empty")
    with engine.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(
            skvo_user.update()
            .where(skvo_user.c.user_id == user_id)
            .values(password_hash=hash_password(password))
        )


def set_token(engine: sa.Engine, name: str, token: str) -> None:
    """Store (the hash of) a bearer token for a user, replacing the old one."""
    with engine.begin() as conn:
        user_id = _user_id(conn, name)
        conn.execute(
            skvo_user.update()
            .where(skvo_user.c.user_id == user_id)
            .values(token_hash=hash_token(token))
        )


def describe(engine: sa.Engine) -> Iterator[str]:
    """One line per user: name, admin flag, token flag, granted sources."""
    with engine.connect() as conn:
        users = conn.execute(sa.select(skvo_user).order_by(skvo_user.c.name)).all()
        for user in users:
            sources = conn.execute(
                sa.select(access_grant.c.source)
                .where(access_grant.c.user_id == user.user_id)
                .order_by(access_grant.c.source)
            ).scalars()
            flags = []
            if user.is_admin:
                flags.append("admin")
            if user.token_hash:
                flags.append("token")
            yield f"{user.name}\t{','.join(flags) or '-'}\t{','.join(sources) or '-'}"
