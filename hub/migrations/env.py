"""Alembic environment: the connection is handed in by `hub.migrate`, never built here
from a config file, so one code path serves the CLI, the tests and the demo."""

from alembic import context

from hub.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
