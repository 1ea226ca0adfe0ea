"""Alembic's environment: migrations run on the connection :mod:`voservice.migrations`
hands over (the writer URL), never on one of their own."""

from __future__ import annotations

from alembic import context

from voservice.migrations import target_metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=target_metadata(),
                  transaction_per_migration=True, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
