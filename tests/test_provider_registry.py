"""The provider specs are the one declaration every registry is derived from: these tests
prove the derived registries (Dagster assets, partitions, reconciliation, open_client, the
emulators, the CLI, masking) agree with the specs, so a list written by hand somewhere
that drifts from them fails here."""

import ast
import importlib
import importlib.util
import json
import pkgutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import hub.providers
from emulators.registry import EMULATORS
from hub import demo
from hub import integrations as store
from hub.cli import app
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.inbound.verify import schemes, signs_url
from hub.orders.kitchen import CANCEL_REASONS
from hub.orders.pos_mapping import REFUSALS
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.spec import AUTH_KINDS
from hub.sync.vendors import FIELDS as VENDOR_FIELDS
from pipelines.assets.exports import EXPORT_ASSETS
from pipelines.assets.sync import RECONCILIATION_ASSETS
from pipelines.definitions import defs
from pipelines.partitions import PROVIDER_PARTITIONS, SYNC_PROVIDERS

runner = CliRunner()
SPECS = registry.providers()


def _asset_keys() -> set[str]:
    return {k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()}


def test_every_provider_package_is_registered_under_its_own_name():
    packages = {m.name for m in pkgutil.iter_modules(hub.providers.__path__) if m.ispkg}
    assert packages == set(SPECS)
    assert {"quickbooks", "xero", "procore", "doordash", "ubereats", "slack", "sendgrid", "twilio", "stripe", "ai_assist"} <= packages
    for name, spec in SPECS.items():
        assert spec.name == name
        assert spec.auth.kind in AUTH_KINDS
        assert importlib.import_module(f"hub.providers.{name}").__doc__, f"hub/providers/{name} has no docstring"


def test_unknown_provider_names_the_known_ones():
    with pytest.raises(ValidationError) as raised:
        registry.get("myob")
    assert ", ".join(registry.names()) in str(raised.value)


def test_every_stream_is_an_asset_keyed_provider_slash_stream():
    keys = _asset_keys()
    declared = {f"{spec.name}/{stream.name}" for spec in SPECS.values() for stream in spec.streams}
    assert declared and declared <= keys
    assert {stream.key for stream in registry.streams()} == declared
    for spec in SPECS.values():  # a stream's deps are streams of the same provider
        for stream in spec.streams:
            assert set(stream.after) <= {s.name for s in spec.streams}, stream.key
    # and no sync asset without a stream: a provider's other assets are exports or its reconciliation
    others = {a.key.to_user_string() for a in (*EXPORT_ASSETS, *RECONCILIATION_ASSETS)}
    assert {k for k in keys if k.split("/")[0] in SPECS} - others == declared


def test_partitions_exist_exactly_for_syncing_providers():
    syncing = {name for name, spec in SPECS.items() if spec.streams}
    assert syncing == {"quickbooks", "xero", "procore"}
    assert set(SYNC_PROVIDERS) == set(PROVIDER_PARTITIONS) == syncing
    assert {p.name for p in PROVIDER_PARTITIONS.values()} == {f"{name}_integrations" for name in syncing}
    repo = defs.get_repository_def()
    for name in syncing:
        assert repo.get_job(f"{name}_sync_job") is not None


def test_reconciliation_assets_exactly_for_reconciling_providers():
    reconciling = {name for name, spec in SPECS.items() if spec.reconciles}
    assert reconciling == {"quickbooks", "xero"}
    assert {a.key.to_user_string() for a in RECONCILIATION_ASSETS} == {f"{name}/reconciliation" for name in reconciling}
    assert {k for k in _asset_keys() if k.endswith("/reconciliation")} == {f"{name}/reconciliation" for name in reconciling}


def test_every_emulator_is_a_providers_or_the_webhook_sink():
    named = registry.emulated()
    for provider, module in named.items():
        assert importlib.util.find_spec(module) is not None, f"{provider}: no module {module}"
    # besides the providers' emulators: a customer's webhook endpoint, the operator's own Stripe account (billing) and
    # the AI assist's external model (an OpenAI-compatible chat API)
    assert {entry.module for entry in EMULATORS.values()} == set(named.values()) | {"emulators.webhook_sink", "emulators.stripe",
                                                                                   "emulators.openai_chat"}
    assert all(SPECS[p].client is not None for p in named), "an emulated provider has a client to talk to it"
    # the demo points each provider at its spec's emulator, on that emulator's port
    by_module = {entry.module: entry for entry in EMULATORS.values()}
    assert demo.DemoPorts().emulator_urls == {provider: by_module[module].url for provider, module in named.items()}
    assert demo.DemoPorts().sink_url == EMULATORS["webhook_sink"].url
    # ... and, on another base, where `python -m emulators run --port-base N` puts it (registry order)
    assert set(demo.EMULATOR_OFFSETS) == set(by_module)
    for offset, entry in enumerate(EMULATORS.values()):
        assert demo.DemoPorts(base=9101).emulator_url(entry.module) == f"http://127.0.0.1:{9101 + offset}", entry.name


def _sample(spec, secret_marker: str = "s3cret") -> tuple[dict, dict]:
    """Config and credentials with every field of the spec filled (secrets recognisable)."""
    def value(field) -> str:
        if field.name == "signing_secret":
            return "c2lnbmluZy1zZWNyZXQtdmFsdWU"  # base64url, as DoorDash's is
        return f"{secret_marker}-{spec.name}-{field.name}-0042" if field.secret else f"{spec.name}-{field.name}-7"
    return {f.name: value(f) for f in spec.config}, {f.name: value(f) for f in spec.credentials}


@pytest.fixture
def company_id(clean_db, secret_keys):
    with clean_db.begin() as conn:
        return store.create_company(conn, "Registry Co", "UTC")


def test_open_client_builds_the_spec_client_for_each_provider(clean_db, secret_keys, company_id):
    keyring = Keyring(secret_keys)
    with_client = [spec for spec in SPECS.values() if spec.client is not None]
    assert {s.name for s in with_client} == {"quickbooks", "xero", "procore", "doordash", "ubereats", "slack", "sendgrid", "twilio"}
    for spec in with_client:
        config, credentials = _sample(spec)
        with clean_db.begin() as conn:
            iid = store.add_integration(conn, keyring, company_id=company_id, provider=spec.name, name=None,
                                        config=config, credentials=credentials, active=True)
        client = open_client(clean_db, keyring, iid)
        try:
            assert type(client) is spec.client.client_class, spec.name
            assert client.transport.base_url == spec.client.base_url
            assert client.transport.dialect is spec.client.dialect
            assert callable(getattr(client, spec.client.check))
        finally:
            client.transport.close()
    without = next(spec for spec in SPECS.values() if spec.client is None)
    config, credentials = _sample(without)
    with clean_db.begin() as conn:
        iid = store.add_integration(conn, keyring, company_id=company_id, provider=without.name, name=None,
                                    config=config, credentials=credentials, active=True)
    with pytest.raises(ValidationError, match="has no API client"):
        open_client(clean_db, keyring, iid)


def test_secret_fields_are_masked_by_integration_show(clean_db, secret_keys, company_id):
    keyring = Keyring(secret_keys)
    for spec in SPECS.values():
        config, credentials = _sample(spec)
        with clean_db.begin() as conn:
            iid = store.add_integration(conn, keyring, company_id=company_id, provider=spec.name, name=None,
                                        config=config, credentials=credentials, active=True)
        shown = runner.invoke(app, ["integration", "show", str(iid)])
        assert shown.exit_code == 0, shown.output
        for field in (*spec.credentials, *spec.config):
            value = {**config, **credentials}[field.name]
            if field.secret:
                assert value not in shown.output, f"{spec.name}.{field.name} shown in clear"
            elif field in spec.config:
                assert f"{field.name}: {value}" in shown.output, f"{spec.name}.{field.name} should be shown"


def test_cli_choices_are_the_registry(clean_db, secret_keys):
    listed = runner.invoke(app, ["providers"])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines() if line.strip()] == sorted(
        SPECS, key=lambda n: (SPECS[n].category, n))
    add = typer.main.get_command(app).commands["integration"].commands["add"]
    assert next(p.help for p in add.params if p.name == "provider") == f"one of: {', '.join(registry.names())}"
    unknown = runner.invoke(app, ["integration", "add", "--company", "x", "--provider", "myob",
                                  "--config", json.dumps({}), "--credentials", json.dumps({})])
    assert unknown.exit_code == 1 and ", ".join(registry.names()) in unknown.output, unknown.output


# --------------------------------------------------------------------------- provider knowledge stays in its folder

ROOT = Path(hub.__file__).resolve().parent.parent
SCANNED = ("hub", "pipelines", "resources", "sensors")
EXEMPT = ("hub/providers/", "hub/demo.py", "hub/demo_sync.py")  # the folders themselves; the demo's data


def _mentions_provider(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and "provider" in n.id or isinstance(n, ast.Attribute) and "provider" in n.attr
               or isinstance(n, ast.Constant) and n.value == "provider" for n in ast.walk(node))


def _names_in(node: ast.AST, names: set[str]) -> list[str]:
    if isinstance(node, ast.Constant):
        return [node.value] if node.value in names else []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names]
    return []


def provider_branches(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each place that knows providers by name: a comparison of a provider
    with a provider-name literal (`item.provider == "xero"`, `provider in ("sendgrid",
    "twilio")`), a dict keyed by two or more provider names, a hand-written list of two or
    more of them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_names_in(s, names) for s in sides) and any(_mentions_provider(s) for s in sides):
                found.append((node.lineno, "compares a provider with a provider name"))
        elif isinstance(node, ast.Dict):
            if sum(1 for k in node.keys if k is not None and _names_in(k, names)) >= 2:
                found.append((node.lineno, "dict keyed by provider names"))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(_names_in(node, names)) >= 2:
            found.append((node.lineno, "list of provider names"))
    return found


@pytest.mark.parametrize("snippet, hits", [
    ('if item.provider == "xero":\n    pass\n', 1),
    ('ok = row["provider"] != "procore"\n', 1),
    ('tracked = provider in ("sendgrid", "twilio")\n', 2),  # the comparison and the list
    ('CODES = {"doordash": "STORE_CLOSED", "ubereats": "STORE_CLOSED"}\n', 1),
    ('ACCOUNTING = ["quickbooks", "xero"]\n', 1),
    ('if kind == "slack":\n    pass\n', 0),  # a route kind, not a provider
    ('POLICIES = {"slack": 1, "email": 2}\n', 0),
])
def test_the_provider_name_scan_finds_per_provider_branches(snippet, hits):
    assert len(provider_branches(snippet, set(registry.names()))) == hits


def test_no_module_outside_the_provider_folders_branches_on_a_provider_name():
    names = set(registry.names())
    found: dict[str, list[tuple[int, str]]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(EXEMPT):
                hits = provider_branches(path.read_text(), names)
                if hits:
                    found[rel] = hits
    assert not found, f"per-provider knowledge belongs in hub/providers/<name>/ (its spec): {found}"


def test_every_marketplace_has_a_code_for_each_of_the_hubs_reasons():
    delivery = registry.with_capability("delivery")
    assert set(delivery) == {"doordash", "ubereats"}
    for name in delivery:
        spec = SPECS[name].delivery
        assert set(spec.refusal_codes) == set(REFUSALS), name
        assert set(spec.cancel_reasons) == set(CANCEL_REASONS), name
        assert spec.pushed and set(spec.pushed) <= {"ready", "cancelled"}, name


def test_messaging_providers_report_delivery_where_they_have_a_status_parser():
    for name in registry.with_capability("messaging"):
        spec = SPECS[name]
        assert (spec.messaging.status_hint is None) == (spec.inbound.delivery_status is None), name


def test_webhook_schemes_are_the_specs_and_the_built_in_ones():
    inbound = {spec.inbound.scheme: spec.inbound for spec in SPECS.values() if spec.inbound is not None}
    assert len(inbound) == sum(1 for spec in SPECS.values() if spec.inbound is not None), "a scheme is declared twice"
    assert schemes() == set(inbound) | {"standard", "github"}
    assert {s for s in schemes() if signs_url(s)} == {"twilio"}
    assert {s for s, spec in inbound.items() if spec.static_header} == {"doordash", "procore"}
    assert {s: spec.tolerance_s for s, spec in inbound.items() if spec.tolerance_s} == {"stripe": 300, "slack": 300, "sendgrid": 600}


def test_accounting_providers_name_their_export_side_and_vendor_fields():
    accounting = registry.with_capability("accounting")
    assert set(accounting) == {"quickbooks", "xero"}
    for name in accounting:
        spec = SPECS[name].accounting
        assert spec.export_side(None).provider == name
        assert set(spec.vendor_fields) <= set(VENDOR_FIELDS), name
        assert not set(spec.first_contact_fields) & set(spec.vendor_fields), name
