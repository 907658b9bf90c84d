"""Every section the integration pages know, by key. A provider's page shows the sections
its spec lists in `pages`; tests/test_web_sections.py checks every listed key is here."""

from __future__ import annotations

from hub.providers.spec import ProviderSpec
from hub.web.sections import (
    Section,
    channels,
    conflicts,
    connection,
    deliveries,
    documents,
    export_preview,
    formatting,
    history,
    mapping,
    menu,
    numbers,
    orders,
    overview,
    preferences,
    projects,
    records,
    senders,
    store,
    sync,
    templates,
)

SECTIONS: dict[str, Section] = {s.key: s for s in (
    overview.SECTION,
    connection.SECTION,
    mapping.SECTION, preferences.SECTION, sync.SECTION, history.SECTION, conflicts.SECTION,  # the ledgers
    export_preview.SECTION,
    projects.SECTION, records.SECTION, documents.SECTION,  # Procore
    store.SECTION, menu.SECTION, orders.SECTION,  # the delivery marketplaces
    channels.SECTION, formatting.SECTION,  # Slack (formatting: Twilio too)
    senders.SECTION, templates.SECTION,  # SendGrid
    numbers.SECTION,  # Twilio
    deliveries.SECTION,  # SendGrid, Twilio
)}


def for_spec(spec: ProviderSpec | None) -> list[Section]:
    """The tabs of a provider's page, in its spec's order (only the overview for a provider
    the hub no longer knows)."""
    keys = spec.pages if spec else ("overview",)
    return [SECTIONS[key] for key in keys]
