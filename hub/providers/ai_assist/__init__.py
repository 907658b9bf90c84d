"""AI assist (local): a feature of the hub itself, connected like a provider so a company
can turn it on. It has no remote API, no credentials, no streams and no webhooks.

Tests: tests/test_provider_registry.py.
"""

from hub.providers.spec import AuthSpec, ProviderSpec

SPEC = ProviderSpec(
    name="ai_assist",
    display_name="AI assist (local)",
    category="productivity",
    auth=AuthSpec("none"),
)
