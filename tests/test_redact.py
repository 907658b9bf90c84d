"""Redaction of error text (pure logic)."""

import pytest

from hub.redact import redact


@pytest.mark.parametrize(
    "text, secret",
    [
        ("GET https://user:pw-SECRET@host/x failed", "pw-SECRET"),
        ("POST /token?refresh_token=rt-SECRET&x=1", "rt-SECRET"),
        ("client_secret=cs-SECRET", "cs-SECRET"),
        ("Authorization: Bearer at-SECRET-123", "at-SECRET-123"),
        ("Authorization: Basic aGViOnNlY3JldA==", "aGViOnNlY3JldA=="),
    ],
)
def test_secrets_are_masked(text, secret):
    assert secret not in redact(text)


@pytest.mark.parametrize(
    "text",
    ["quickbooks: the refresh token was refused; reconnect the integration", "Basic validation failed", "token expired"],
)
def test_ordinary_words_survive(text):
    assert redact(text) == text
