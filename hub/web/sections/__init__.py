"""The sections of an integration's page (/settings/integrations/<id>/<section>): each a
tab, declared once as a `Section`, shown for the providers whose spec lists its key in
`ProviderSpec.pages` (hub/providers/spec.py), in that order.

A section is a read (`load`: the template's values, from a connection scoped to the
session's company and the integration row already checked to be the company's) plus the
routes of its actions (`routes`: built with `SettingsPages.integration_action`, which checks
CSRF, the session, the company and the admin role before the action runs). Adding a
section: a module here with a `SECTION`, its template under templates/sections/, its key
in the registry (hub/web/sections/registry.py) and in the specs of the providers that
show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.providers.spec import ProviderSpec
from hub.web.context import Context

if TYPE_CHECKING:  # the pages import the sections, never the other way at run time
    from hub.web.pages import SettingsPages

# (connection, context, integration summary row, spec, query parameters) -> template values
Loader = Callable[[Connection, Context, sa.Row, ProviderSpec, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Section:
    key: str  # the URL segment and the spec's name for it
    label: str  # the tab's label
    template: str  # under templates/sections/
    load: Loader
    routes: Callable[["SettingsPages"], list] = field(default=lambda pages: [])
