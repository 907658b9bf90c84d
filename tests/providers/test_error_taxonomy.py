"""Each provider's responses map to the error a person can act on (pure: built responses)."""

import httpx
import pytest

from hub.providers import errors
from hub.providers.procore.client import ProcoreDialect
from hub.providers.quickbooks.client import QuickBooksDialect
from hub.providers.xero.client import XeroDialect


def _qbo_fault(code: str, message: str, status: int = 400) -> httpx.Response:
    body = {"Fault": {"Error": [{"Message": message, "Detail": f"{message} : detail", "code": code, "element": ""}], "type": "ValidationFault"}}
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    "response, kind, code",
    [
        (_qbo_fault("5010", "Stale Object Error"), errors.StaleVersion, "5010"),
        (_qbo_fault("6240", "Duplicate Name Exists Error"), errors.DuplicateRecord, "6240"),
        (_qbo_fault("610", "Object Not Found"), errors.RecordNotFound, "610"),
        (_qbo_fault("6000", "A business validation error has occurred"), errors.RecordProblem, "6000"),
        (_qbo_fault("120", "Authorization Failure", 403), errors.NeedsReauthentication, "120"),
        (_qbo_fault("6000", "Fault inside a 200", 200), errors.RecordProblem, "6000"),  # a 200 may carry a Fault
        (httpx.Response(429, headers={"Retry-After": "12"}), errors.RateLimited, None),
        (httpx.Response(503), errors.TransientProblem, None),
        (httpx.Response(401, json={"fault": {"error": [{"code": "3200"}]}}), errors.NeedsReauthentication, None),
    ],
)
def test_quickbooks(response, kind, code):
    error = QuickBooksDialect().classify(response)
    assert type(error) is kind and error.code == code
    if kind is errors.RateLimited:
        assert error.retry_after == 12


def test_quickbooks_success_is_none():
    assert QuickBooksDialect().classify(httpx.Response(200, json={"QueryResponse": {}})) is None


@pytest.mark.parametrize(
    "response, kind",
    [
        (httpx.Response(400, json={"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                                   "Elements": [{"ValidationErrors": [{"Message": "Please enter a unique Name."}]}]}), errors.RecordProblem),
        (httpx.Response(429, headers={"Retry-After": "30", "X-Rate-Limit-Problem": "minute"}), errors.RateLimited),
        (httpx.Response(429, headers={"Retry-After": "40000", "X-Rate-Limit-Problem": "day"}), errors.QuotaExhausted),
        (httpx.Response(403, json={"Title": "Forbidden", "Detail": "AuthenticationUnsuccessful"}), errors.ConfigurationProblem),
        (httpx.Response(404), errors.RecordNotFound),
        (httpx.Response(401), errors.NeedsReauthentication),
        (httpx.Response(503), errors.TransientProblem),
    ],
)
def test_xero(response, kind):
    error = XeroDialect().classify(response)
    assert type(error) is kind


def test_xero_validation_message_is_the_providers():
    response = httpx.Response(400, json={"Type": "ValidationException", "Elements": [{"ValidationErrors": [{"Message": "Please enter a unique Name."}]}]})
    assert XeroDialect().classify(response).message == "Please enter a unique Name."


@pytest.mark.parametrize(
    "response, kind",
    [
        (httpx.Response(429, text="You have surpassed the max number of requests for an hour.", headers={"Retry-After": "120"}), errors.RateLimited),
        (httpx.Response(403, json={"errors": "App is not connected to this company"}), errors.ConfigurationProblem),
        (httpx.Response(422, json={"errors": "Subject can't be blank"}), errors.RecordProblem),
        (httpx.Response(404, json={"errors": "Not found"}), errors.RecordNotFound),
        (httpx.Response(502), errors.TransientProblem),
    ],
)
def test_procore(response, kind):
    error = ProcoreDialect().classify(response)
    assert type(error) is kind


def test_messages_are_actionable_and_name_the_provider():
    error = ProcoreDialect().classify(httpx.Response(403, json={"errors": "App is not connected to this company"}))
    assert str(error) == "procore: App is not connected to this company [HTTP 403]"
    stale = QuickBooksDialect().classify(_qbo_fault("5010", "Stale Object Error"))
    assert str(stale) == "quickbooks: Stale Object Error (code 5010) [HTTP 400]" and stale.kind == "stale_version"
