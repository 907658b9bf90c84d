"""Sub-command groups of the `hub` CLI, one module per area (registered in hub/cli.py).

Every group is made with `typer_app`, so an expected failure anywhere (a `HubError`, a
database refusal, an unmigrated database, ...) prints one `Error:` line and exits 1.
"""

from __future__ import annotations


import psycopg
import typer
from alembic.util import CommandError
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError
from typer.core import TyperGroup

from hub.errors import HubError
from hub.redact import describe_error


class HubGroup(TyperGroup):
    """Turns expected failures into `Error: <one line>` and exit code 1 (a closed stdout is
    none: it goes on to the entry point, hub/cli.py, and is not reported as a broken pipe)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `hub ... | head`: not an error; the entry point (hub/cli.py) ends quietly
            raise
        except HubError as exc:
            message = str(exc)
        except OperationalError as exc:
            message = f"cannot reach the hub database: {describe_error(exc)}"
        except ProgrammingError as exc:
            if isinstance(exc.orig, psycopg.errors.UndefinedTable):
                message = "the hub database has no schema yet: run `hub db upgrade`"
            else:
                message = f"the database refused the request: {describe_error(exc)}"
        except DBAPIError as exc:  # input the database refused: out-of-range id, NUL byte, ...
            message = f"the database refused the input: {describe_error(exc)}"
        except CommandError as exc:  # alembic: unknown revision and the like
            message = f"migration: {exc}"
        except ArgumentError as exc:
            message = f"invalid database URL: {str(exc).splitlines()[0]}"
        except (OSError, UnicodeError, ValueError) as exc:
            message = describe_error(exc)
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(code=1)


def typer_app(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, cls=HubGroup, no_args_is_help=True, pretty_exceptions_show_locals=False)
