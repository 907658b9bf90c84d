"""Each concrete provider client conforms to its capability protocol (hub/providers/protocols.py).

`runtime_checkable` isinstance only sees that the members exist, so the parameters of every
protocol method are compared too: the same names, in the same order, of the same kind, with
a default wherever the protocol has one; a client may add parameters only with a default.
A renamed parameter or a missing method fails here rather than in an order run; the last
tests prove that the check does reject such clients.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Mapping

import pytest

from hub.providers.doordash.client import DoorDashClient, DoorDashDialect
from hub.providers.procore.client import ProcoreClient, ProcoreDialect
from hub.providers.protocols import (
    AccountingClient,
    DeliveryClient,
    MessagingClient,
    ProjectClient,
    ProviderClient,
    StoreClient,
)
from hub.providers.quickbooks.client import QuickBooksClient, QuickBooksDialect
from hub.providers.ratebudget import RateBudget
from hub.providers.sendgrid.client import SendGridClient, SendGridDialect
from hub.providers.slack.client import SlackClient, SlackDialect
from hub.providers.transport import Transport
from hub.providers.twilio.client import TwilioClient, TwilioDialect
from hub.providers.ubereats.client import UberEatsClient, UberEatsDialect
from hub.providers.xero.client import XeroClient, XeroDialect

# (protocol, client class, its dialect, the constructor's arguments after the transport)
CLIENTS = [
    (AccountingClient, QuickBooksClient, QuickBooksDialect, ("9130350000000001",)),
    (AccountingClient, XeroClient, XeroDialect, ("00000000-0000-0000-0000-000000000001",)),
    (ProjectClient, ProcoreClient, ProcoreDialect, (42,)),
    (DeliveryClient, DoorDashClient, DoorDashDialect, ("store-1",)),
    (DeliveryClient, UberEatsClient, UberEatsDialect, ("store-1",)),
    (StoreClient, DoorDashClient, DoorDashDialect, ("store-1",)),
    (StoreClient, UberEatsClient, UberEatsDialect, ("store-1",)),
    (MessagingClient, SlackClient, SlackDialect, ()),
    (MessagingClient, SendGridClient, SendGridDialect, ("ops@example.com",)),
    (MessagingClient, TwilioClient, TwilioDialect, ("AC00000000000000000000000000000001", "+15005550006")),
]


def protocol_members(protocol: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """(methods by name, attribute types by name) declared by `protocol` and the protocols it extends."""
    methods: dict[str, Any] = {}
    for base in reversed(protocol.__mro__):
        if base is typing.Protocol or not getattr(base, "_is_protocol", False):
            continue
        methods.update({name: value for name, value in vars(base).items()
                        if inspect.isfunction(value) and not name.startswith("_")})  # not Protocol's own hooks
    attributes = {name: hint for name, hint in typing.get_type_hints(protocol).items()}
    return methods, attributes


def _parameters(function: Any) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(function).parameters.values() if p.name != "self"]


def _required(parameter: inspect.Parameter) -> bool:
    return parameter.default is inspect.Parameter.empty and parameter.kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def conformance_problems(client: object, protocol: type) -> list[str]:
    """What keeps `client` from being used as `protocol`: missing members, attributes of the
    wrong type, and methods whose parameters differ from the protocol's."""
    problems = [] if isinstance(client, protocol) else [f"not an instance of {protocol.__name__}"]
    methods, attributes = protocol_members(protocol)
    for name, hint in attributes.items():
        if not hasattr(client, name):
            problems.append(f"attribute {name} missing")
        elif isinstance(hint, type) and not isinstance(getattr(client, name), hint):
            problems.append(f"attribute {name} is {type(getattr(client, name)).__name__}, not {hint.__name__}")
    for name, declared in methods.items():
        implemented = getattr(type(client), name, None)
        if not callable(implemented):
            problems.append(f"method {name} missing")
            continue
        wanted, actual = _parameters(declared), _parameters(implemented)
        for position, parameter in enumerate(wanted):
            found = actual[position] if position < len(actual) else None
            if found is None or (found.name, found.kind) != (parameter.name, parameter.kind):
                got = f"{found.name} ({found.kind.description})" if found else "nothing"
                problems.append(f"{name}: parameter {position + 1} is {got}, the protocol has "
                                f"{parameter.name} ({parameter.kind.description})")
            elif not _required(parameter) and _required(found):
                problems.append(f"{name}: parameter {parameter.name} needs a default, as in the protocol")
        problems.extend(f"{name}: extra parameter {extra.name} has no default" for extra in actual[len(wanted):] if _required(extra))
    return problems


@pytest.fixture
def make_client():
    transports: list[Transport] = []

    def make(client_class: type, dialect: type, args: tuple) -> object:
        transport = Transport(dialect(), "http://127.0.0.1:9", RateBudget(dialect.name))
        transports.append(transport)
        return client_class(transport, *args)

    yield make
    for transport in transports:
        transport.close()


@pytest.mark.parametrize(("protocol", "client_class", "dialect", "args"), CLIENTS, ids=[c[1].__name__ for c in CLIENTS])
def test_client_conforms_to_its_protocol(make_client, protocol, client_class, dialect, args):
    client = make_client(client_class, dialect, args)
    assert isinstance(client, protocol)
    assert isinstance(client, ProviderClient)
    assert conformance_problems(client, protocol) == []


def test_every_protocol_method_is_checked():
    """The member walk sees inherited members, so a client is held to the whole protocol."""
    methods, attributes = protocol_members(DeliveryClient)
    assert set(methods) == {"check", "order_details", "accept", "deny", "order_state", "push_status"}
    assert set(attributes) == {"transport", "order_state_readable"}
    assert set(protocol_members(ProjectClient)[0]) >= {"check", "projects", "project", "rfis", "submittals",
                                                       "daily_logs", "files", "upload_file"}


# ---- the check can fail -------------------------------------------------------------------
class _HalfDelivery:
    """A delivery client that forgot push_status and order_state_readable."""

    def __init__(self, transport: Transport):
        self.transport = transport

    def check(self) -> dict[str, Any]:
        return {}

    def order_details(self, order_id: str, webhook: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def accept(self, order_id: str, order_number: str) -> None: ...

    def deny(self, order_id: str, order_number: str, code: str, explanation: str, items: list[str] | None = None) -> None: ...

    def order_state(self, order_id: str) -> str | None:
        return None


class _RenamedDelivery(_HalfDelivery):
    """Every member present, but accept's parameter renamed, deny's items without its
    default, and an extra required parameter on order_state."""

    order_state_readable = False

    def accept(self, order_id: str, merchant_supplied_id: str) -> None: ...

    def deny(self, order_id: str, order_number: str, code: str, explanation: str, items: list[str] | None) -> None: ...

    def order_state(self, order_id: str, store_id: str) -> str | None:
        return None

    def push_status(self, order_id: str, status: str, order_number: str, reason: str, details: str = "") -> None: ...


def test_an_incomplete_client_is_rejected(make_client):
    client = make_client(_HalfDelivery, DoorDashDialect, ())
    assert not isinstance(client, DeliveryClient)
    problems = conformance_problems(client, DeliveryClient)
    assert "method push_status missing" in problems
    assert "attribute order_state_readable missing" in problems


def test_a_renamed_parameter_is_rejected_though_isinstance_passes(make_client):
    client = make_client(_RenamedDelivery, DoorDashDialect, ())
    assert isinstance(client, DeliveryClient)  # runtime_checkable sees names only
    problems = conformance_problems(client, DeliveryClient)
    assert any(p.startswith("accept: parameter 2 is merchant_supplied_id") for p in problems), problems
    assert "deny: parameter items needs a default, as in the protocol" in problems
    assert "order_state: extra parameter store_id has no default" in problems
    assert len(problems) == 3, problems


def test_a_client_of_another_capability_is_rejected(make_client):
    slack = make_client(SlackClient, SlackDialect, ())
    assert not isinstance(slack, DeliveryClient)
    assert not isinstance(slack, ProjectClient)
    assert "method accept missing" in conformance_problems(slack, DeliveryClient)


def test_an_attribute_of_the_wrong_type_is_rejected(make_client):
    client = make_client(_RenamedDelivery, DoorDashDialect, ())
    client.transport = object()
    assert "attribute transport is object, not Transport" in conformance_problems(client, DeliveryClient)
