"""Unit tests of the keyring: pure logic, no database."""

import json

import pytest

from hub.crypto import Keyring, SecretDict, generate_key, mask
from hub.errors import SecretKeyError

SECRET = {"client_secret": "s3cr3t-value-that-must-not-leak", "refresh_token": "rt-0123456789abcdef"}


def test_round_trip_and_envelope_shape():
    ring = Keyring([generate_key()])
    envelope = ring.encrypt(SECRET, "integration.credentials")
    assert envelope["kid"] == ring.primary_kid and envelope["v"] == 1
    assert ring.decrypt(envelope, "integration.credentials") == SECRET
    text = json.dumps(envelope)
    assert "s3cr3t" not in text and "rt-0123" not in text


def test_each_encryption_uses_a_fresh_nonce():
    ring = Keyring([generate_key()])
    assert ring.encrypt(SECRET, "p")["ct"] != ring.encrypt(SECRET, "p")["ct"]


def test_purpose_is_bound_to_the_ciphertext():
    ring = Keyring([generate_key()])
    envelope = ring.encrypt(SECRET, "integration.credentials")
    with pytest.raises(SecretKeyError, match="failed authentication"):
        ring.decrypt(envelope, "integration.config")


def test_tampered_ciphertext_is_refused():
    ring = Keyring([generate_key()])
    envelope = ring.encrypt(SECRET, "p")
    envelope["ct"] = envelope["ct"][:-4] + ("AAAA" if not envelope["ct"].endswith("AAAA") else "BBBB")
    with pytest.raises(SecretKeyError, match="corrupted or was tampered"):
        ring.decrypt(envelope, "p")


def test_old_ciphertexts_decrypt_during_rotation():
    old, new = generate_key(), generate_key()
    envelope = Keyring([old]).encrypt(SECRET, "p")
    rotating = Keyring([new, old])
    assert rotating.decrypt(envelope, "p") == SECRET
    assert rotating.needs_rotation(envelope)
    assert rotating.encrypt(SECRET, "p")["kid"] == rotating.primary_kid != envelope["kid"]


def test_wrong_key_names_the_variable_and_the_key_id():
    envelope = Keyring([generate_key()]).encrypt(SECRET, "p")
    with pytest.raises(SecretKeyError) as info:
        Keyring([generate_key()]).decrypt(envelope, "p")
    assert "HUB_SECRET_KEYS" in str(info.value) and envelope["kid"] in str(info.value)


@pytest.mark.parametrize("value", ["", " , "])
def test_missing_keys_name_the_variable(value):
    with pytest.raises(SecretKeyError, match="HUB_SECRET_KEYS is not set"):
        Keyring.from_env({"HUB_SECRET_KEYS": value})


@pytest.mark.parametrize("value", ["not-base64!!", "c2hvcnQ="])
def test_malformed_keys_are_refused(value):
    with pytest.raises(SecretKeyError, match="key #1 is not url-safe base64 of 32 bytes"):
        Keyring.from_env({"HUB_SECRET_KEYS": value})


def test_nothing_secret_in_reprs():
    key = generate_key()
    ring = Keyring([key])
    assert key not in repr(ring)
    creds = SecretDict(SECRET)
    for shown in (repr(creds), str(creds), f"{creds}", str([creds])):
        assert "s3cr3t" not in shown and "rt-0123" not in shown
    assert creds["client_secret"] == SECRET["client_secret"]  # still usable
    assert creds.masked()["client_secret"] == "****leak"


def test_mask_hides_short_values_entirely():
    assert mask("abc") == "****"
    assert mask("x" * 15) == "****"
    assert mask("abcdefghijklmnop") == "****mnop"
