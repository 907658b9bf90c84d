"""Trained models in PostgreSQL (`ai_model`): one row per (integration, task, version), the
newest version is the one that scores.

A model is a pickle of sklearn objects, and unpickling runs code: so the hub loads only bytes
it wrote itself. Each row carries `signature`, an HMAC-SHA256 of the bytes under a key derived
from HUB_SECRET_KEYS (`Keyring.derive`); a row whose signature does not verify under any configured
key (written by someone else, altered, or signed by a key since removed) is refused without
being unpickled, and the next training replaces it. New models are signed under the newest
key; a model signed under an older key still configured (a rotation in progress) verifies,
so rotating HUB_SECRET_KEYS does not stop the assist until the next training.

Loaded models are kept per process (a few, by row id), so a page that scores lines does not
unpickle the model again.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.crypto import Keyring
from hub.schema import ai_model

PURPOSE = "ai.model.signature"
_CACHE: "OrderedDict[tuple[int, str], Any]" = OrderedDict()
_CACHE_SIZE = 8


class ModelRefused(Exception):
    """A stored model whose signature does not verify: it is not loaded."""


@dataclass(frozen=True)
class StoredModel:
    id: int
    company_id: int
    integration_id: int
    task: str
    version: int
    training_size: int
    evaluation: dict
    model: Any


def sign(keyring: Keyring, blob: bytes) -> str:
    return hmac.new(keyring.derive(PURPOSE), blob, hashlib.sha256).hexdigest()


def verifies(keyring: Keyring, blob: bytes, signature: str) -> bool:
    """Whether `signature` is the hub's own under any configured key (newest first)."""
    return any(hmac.compare_digest(hmac.new(key, blob, hashlib.sha256).hexdigest(), signature)
               for key in keyring.derive_each(PURPOSE))


def save(conn: Connection, keyring: Keyring, *, company_id: int, integration_id: int, task: str, model: Any,
         training_size: int, evaluation: dict, cpu_seconds: float) -> tuple[int, int]:
    """Store a new version; returns (row id, version)."""
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    version = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(ai_model.c.version), 0) + 1)
                          .where(ai_model.c.integration_id == integration_id, ai_model.c.task == task))
    row_id = conn.scalar(ai_model.insert().values(
        company_id=company_id, integration_id=integration_id, task=task, version=version, training_size=training_size,
        evaluation=evaluation, cpu_seconds=round(cpu_seconds, 3), model=blob, signature=sign(keyring, blob)).returning(ai_model.c.id))
    return row_id, version


def latest(conn: Connection, keyring: Keyring, integration_id: int, task: str, *, company_id: int) -> StoredModel | None:
    """The newest model of this integration and task, or None if there is none. Looked up by
    the integration *and* its company: a model never scores another company's data."""
    head = conn.execute(sa.select(ai_model.c.id, ai_model.c.company_id, ai_model.c.version, ai_model.c.training_size,
                                  ai_model.c.evaluation, ai_model.c.signature)
                        .where(ai_model.c.integration_id == integration_id, ai_model.c.task == task,
                               ai_model.c.company_id == company_id)
                        .order_by(ai_model.c.version.desc()).limit(1)).first()
    if head is None:
        return None
    key = (head.id, head.signature)
    model = _CACHE.get(key)
    if model is None:
        blob = conn.scalar(sa.select(ai_model.c.model).where(ai_model.c.id == head.id))
        if not verifies(keyring, bytes(blob), head.signature):
            raise ModelRefused(f"model {head.id} ({task}, integration {integration_id}) is not signed by this hub; retrain it")
        model = pickle.loads(blob)  # noqa: S301 - verified above: the hub wrote these bytes
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return StoredModel(head.id, head.company_id, integration_id, task, head.version, head.training_size, head.evaluation, model)


def versions(conn: Connection, integration_id: int, task: str) -> list[dict]:
    """Every stored version's summary (no model bytes), newest first: accuracy over time."""
    rows = conn.execute(sa.select(ai_model.c.id, ai_model.c.version, ai_model.c.trained_at, ai_model.c.training_size,
                                  ai_model.c.evaluation, ai_model.c.cpu_seconds)
                        .where(ai_model.c.integration_id == integration_id, ai_model.c.task == task)
                        .order_by(ai_model.c.version.desc())).mappings()
    return [dict(r) for r in rows]
