"""AI assist (local): a feature of the hub itself, connected like a provider so a company
can turn it on. It has no remote API, no credentials, no streams and no webhooks.

Tests: tests/test_provider_registry.py.
"""

from hub.providers.spec import AuthSpec, CompanyPage, ProviderSpec

SPEC = ProviderSpec(
    name="ai_assist",
    display_name="AI assist (local)",
    category="productivity",
    auth=AuthSpec("none"),
    company_page=CompanyPage("/settings/integrations/ai", "AI assist", "Open AI assist",
                             "Learnt suggestions for bill line coding, account mapping and vendor matching: thresholds, "
                             "feedback, cost."),
)
