"""Alembic's environment: migrations run on the connection `Database.upgrade` hands over."""

from __future__ import annotations

from alembic import context

from pipewarden.db._tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
