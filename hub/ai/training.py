"""Training the AI assist's models of one integration: what the nightly Dagster asset
(pipelines/assets/ai.py) runs for its partition, and the CLI or a test can run directly.

Line coding: read the integration's history and feedback (hub/ai/data.py), measure a model
on a held-out split (hub/ai/evaluation.py; the baselines too while the history is small
enough for the fuzzy one to be cheap), fit the model that will score on all of it, store it
signed with its evaluation (hub/ai/storage.py) and meter the training (hub/ai/usage.py).

Account mapping and vendor matching learn nothing of their own (mapping reads category names
with the line-coding model; vendor matching is a fixed scorer), but what their thresholds
mean is measured the same way, on the answers people gave (`evaluate_account_mapping`,
`evaluate_vendor_matching`; hub/ai/evaluation.py), and stored the same way: a version of the
task in `ai_model`, whose "model" is only a note of what was measured, with the evaluation.
`train_all` runs the three, as the nightly asset does.

When to train (`due`): every night, each active accounting integration whose company has the
assist on; and sooner, when `FEEDBACK_RETRAIN` verdicts arrived since its newest model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.ai import data, settings, storage, usage, vendor_match
from hub.ai.evaluation import evaluate, mapping_evaluation, vendor_evaluation
from hub.ai.settings import FEEDBACK_RETRAIN, accounting_providers, at_threshold  # noqa: F401 - FEEDBACK_RETRAIN re-exported
from hub.ai.model import LineCoder, NotEnoughData
from hub.crypto import Keyring
from hub.schema import ai_feedback, ai_model, integration

TASK = "line_coding"
EVALUATION_MIN = data.EVALUATION_MIN["line_coding"]
BASELINE_MAX = 30_000  # more: the fuzzy baseline (all-pairs similarity) is left to bench/ai_coding.py
MAPPING_EVALUATION_MIN = data.EVALUATION_MIN["account_mapping"]
VENDOR_EVALUATION_MIN = data.EVALUATION_MIN["vendor_match"]


@dataclass
class TrainingResult:
    integration_id: int
    task: str
    status: str  # trained, evaluated (the tasks without a model of their own) or skipped
    reason: str = ""
    version: int | None = None
    model_id: int | None = None
    training_size: int = 0
    cpu_seconds: float = 0.0
    evaluation: dict = field(default_factory=dict)

    def as_metadata(self, prefix: str = "") -> dict:
        """What the Dagster asset shows (numbers and short text; no data); `prefix` names the task."""
        return {prefix + k: v for k, v in self._metadata().items()}

    def _metadata(self) -> dict:
        out = {"status": self.status, "training_size": self.training_size, "cpu_seconds": round(self.cpu_seconds, 3)}
        if self.reason:
            out["reason"] = self.reason
        if self.version is not None:
            out["version"] = self.version
        if self.evaluation.get("top1") is not None:
            out["held_out_top1"] = round(self.evaluation["top1"], 4)
            row = at_threshold(self.evaluation["thresholds"], settings.DEFAULT_HIGH)
            if row.get("precision") is not None:
                out["precision_at_0.9"], out["coverage_at_0.9"] = round(row["precision"], 4), round(row["coverage"], 4)
        return out


def train_line_coding(engine: Engine, keyring: Keyring, integration_id: int) -> TrainingResult:
    """Train, evaluate and store a new line-coding model of this integration."""
    with engine.connect() as conn:
        company_id = data.company_of(conn, integration_id)
        examples = data.coding_examples(conn, integration_id)
    history = sum(1 for e in examples if not e.correction)
    started = time.process_time()
    try:
        evaluation: dict = {}
        if history >= EVALUATION_MIN:
            evaluation = evaluate(examples, baselines=history <= BASELINE_MAX).as_json()
        model = LineCoder.fit(examples)
    except NotEnoughData as e:
        return TrainingResult(integration_id, TASK, "skipped", str(e), training_size=len(examples))
    cpu = time.process_time() - started
    with engine.begin() as conn:
        model_id, version = storage.save(conn, keyring, company_id=company_id, integration_id=integration_id, task=TASK, model=model,
                                         training_size=len(examples), evaluation=evaluation, cpu_seconds=cpu)
        usage.record(conn, company_id, TASK, training_runs=1, cpu_seconds=cpu)
    return TrainingResult(integration_id, TASK, "trained", version=version, model_id=model_id, training_size=len(examples),
                          cpu_seconds=cpu, evaluation=evaluation)


def _store_evaluation(engine: Engine, keyring: Keyring, company_id: int, integration_id: int, task: str, note: dict,
                      size: int, evaluation: dict, cpu: float) -> TrainingResult:
    with engine.begin() as conn:
        model_id, version = storage.save(conn, keyring, company_id=company_id, integration_id=integration_id, task=task, model=note,
                                         training_size=size, evaluation=evaluation, cpu_seconds=cpu)
        usage.record(conn, company_id, task, training_runs=1, cpu_seconds=cpu)
    return TrainingResult(integration_id, task, "evaluated", version=version, model_id=model_id, training_size=size,
                          cpu_seconds=cpu, evaluation=evaluation)


def evaluate_account_mapping(engine: Engine, keyring: Keyring, integration_id: int) -> TrainingResult:
    """Measure the account-mapping task on the categories whose account a person chose
    (hub/ai/evaluation.py `mapping_evaluation`), with the newest line-coding model, and store it."""
    task = "account_mapping"
    with engine.connect() as conn:
        company_id = data.company_of(conn, integration_id)
        if not settings.read(conn, company_id).task(task).enabled:
            return TrainingResult(integration_id, task, "skipped", "the task is off")
        known = data.known_mappings(conn, integration_id)
        if len(known) < MAPPING_EVALUATION_MIN:
            return TrainingResult(integration_id, task, "skipped", f"{len(known)} categories with an account a person chose; "
                                  f"the evaluation needs {MAPPING_EVALUATION_MIN}")
        try:
            reader = storage.latest(conn, keyring, integration_id, TASK, company_id=company_id)
        except storage.ModelRefused:
            reader = None
        if reader is None:
            return TrainingResult(integration_id, task, "skipped", "no line-coding model to read the categories with")
    started = time.process_time()
    evaluation = {**mapping_evaluation(reader.model, known, train_size=reader.training_size).as_json(),
                  "line_coding_version": reader.version}
    note = {"task": task, "reads_with": "line_coding", "line_coding_model": reader.id}
    return _store_evaluation(engine, keyring, company_id, integration_id, task, note, len(known), evaluation,
                             time.process_time() - started)


def evaluate_vendor_matching(engine: Engine, keyring: Keyring, integration_id: int) -> TrainingResult:
    """Measure vendor matching on the vendors people decided a match about (hub/ai/evaluation.py
    `vendor_evaluation`), against the ledger's vendors the hub knows, and store it."""
    task = vendor_match.TASK
    with engine.connect() as conn:
        company_id = data.company_of(conn, integration_id)
        if not settings.read(conn, company_id).task(task).enabled:
            return TrainingResult(integration_id, task, "skipped", "the task is off")
        decided = data.vendor_verdicts(conn, integration_id)
        pool = [c for c in vendor_match.candidates(conn, integration_id) if c["remote_id"]]
    started = time.process_time()
    result = vendor_evaluation(decided, pool)
    if result.test_size < VENDOR_EVALUATION_MIN:
        return TrainingResult(integration_id, task, "skipped", f"{result.test_size} vendors people decided a match about; "
                              f"the evaluation needs {VENDOR_EVALUATION_MIN}")
    note = {"task": task, "scorer": "hub.ai.vendor_match.score"}
    return _store_evaluation(engine, keyring, company_id, integration_id, task, note, len(pool), result.as_json(),
                             time.process_time() - started)


def train_all(engine: Engine, keyring: Keyring, integration_id: int) -> list[TrainingResult]:
    """Line coding trained, then the two other tasks measured (mapping reads with the new model)."""
    return [train_line_coding(engine, keyring, integration_id), evaluate_account_mapping(engine, keyring, integration_id),
            evaluate_vendor_matching(engine, keyring, integration_id)]


def candidates(engine: Engine) -> list[tuple[int, str]]:
    """(integration id, provider) of the active accounting integrations whose company has line
    coding on and covers them: what the nightly training runs for."""
    out = []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(integration.c.id, integration.c.provider, integration.c.company_id)
                            .where(integration.c.is_active, integration.c.provider.in_(accounting_providers()))
                            .order_by(integration.c.id)).all()
        for r in rows:
            company = settings.read(conn, r.company_id)
            if company.task(TASK).enabled and company.covers(r.id):
                out.append((r.id, r.provider))
    return out


def new_feedback(engine: Engine) -> dict[int, int]:
    """integration id -> the newest feedback id, for integrations where one task has at least
    `FEEDBACK_RETRAIN` verdicts since that task's newest version (a line-coding model, or the
    measure of account mapping or vendor matching): the asset then trains and measures all
    three, so verdicts on vendor matches refresh the vendor task's evaluation as line-coding
    verdicts refresh the model."""
    newest = (sa.select(ai_model.c.integration_id, ai_model.c.task, sa.func.max(ai_model.c.trained_at).label("at"))
              .group_by(ai_model.c.integration_id, ai_model.c.task).subquery())
    query = (sa.select(ai_feedback.c.integration_id, sa.func.count(), sa.func.max(ai_feedback.c.id))
             .select_from(ai_feedback.outerjoin(newest, sa.and_(newest.c.integration_id == ai_feedback.c.integration_id,
                                                                newest.c.task == ai_feedback.c.task)))
             .where(sa.or_(newest.c.at.is_(None), ai_feedback.c.created_at > newest.c.at))
             .group_by(ai_feedback.c.integration_id, ai_feedback.c.task))
    due: dict[int, int] = {}
    with engine.connect() as conn:
        for iid, n, last in conn.execute(query):
            if n >= FEEDBACK_RETRAIN:
                due[iid] = max(due.get(iid, 0), last)
    return due
