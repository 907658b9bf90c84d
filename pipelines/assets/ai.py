"""AI assist training: the line-coding model of one integration, partitioned by integration
(`integrations`: the job is launched only for accounting ones; any other partition
materializes as a no-op that says why). Trains from the integration's own imported history
and feedback, stores the signed model with its held-out evaluation, then measures the
account-mapping and vendor-matching tasks on people's answers and stores those evaluations
too (hub/ai/training.py `train_all`): what the AI page's threshold charts show.

Launched by `ai_training_nightly_schedule` (every night at 03:00 UTC, one run per active
accounting integration whose company has line coding on; run key = partition and date) and
by `ai_feedback_sensor` (as soon as enough verdicts arrived since the newest model; run key =
partition and newest feedback id, so the same feedback never trains twice).

hub.ai.training (scikit-learn, scipy, numpy: ~1.3 s of CPU and ~100 MB to import) is imported
inside the functions below, not with this module: every run process of the code location
imports this module, and the nightly fan-out's hundreds of sync runs train nothing
(bench/nightly_fanout.py). The code server pays it once, at the first schedule tick.
"""

from datetime import datetime, timezone

import dagster as dg

from hub import integrations as store
from hub.ai.settings import FEEDBACK_RETRAIN, accounting_providers
from pipelines.partitions import integrations_partitions
from resources import HubDatabase, SecretStore

AI_TRAINING_JOB = "ai_training_job"


@dg.asset(
    key=["ai", "line_coding_model"],
    group_name="ai",
    kinds={"scikit-learn", "postgres"},
    partitions_def=integrations_partitions,
    pool="ai_training",
    description="Per accounting integration: a calibrated line-coding model (bill line -> account) trained on the "
                "integration's imported bill lines and people's feedback, with its held-out evaluation; and the "
                "held-out evaluations of account mapping and vendor matching (hub/ai).",
)
def line_coding_model(context: dg.AssetExecutionContext, hub_db: HubDatabase, secrets: SecretStore) -> dg.MaterializeResult:
    integration_id = store.integration_id_from_partition(context.partition_key)
    provider = context.partition_key.rsplit("-", 1)[0]
    if provider not in accounting_providers():
        reason = f"{provider} is not an accounting integration: it has no bill lines to learn from"
        context.log.info(reason)
        return dg.MaterializeResult(metadata={"skipped": reason})
    from hub.ai import training  # see the module docstring

    coding, *others = training.train_all(hub_db.get_engine(), secrets.keyring(), integration_id)
    metadata = coding.as_metadata()
    for result in [coding, *others]:
        context.log.info(f"{result.task} of integration {integration_id}: {result.status} {result.reason}".strip())
    for result in others:
        metadata.update(result.as_metadata(prefix=f"{result.task}_"))
    return dg.MaterializeResult(metadata=metadata)


ai_training_job = dg.define_asset_job(
    AI_TRAINING_JOB, selection=dg.AssetSelection.assets(line_coding_model),
    description="Train the AI assist's models of one integration (partition).",
)


@dg.schedule(
    name="ai_training_nightly_schedule",
    job=ai_training_job,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly training of every active accounting integration's line-coding model.",
)
def ai_training_nightly_schedule(context: dg.ScheduleEvaluationContext, hub_db: HubDatabase):
    from hub.ai import training  # see the module docstring

    day = (context.scheduled_execution_time or datetime.now(timezone.utc)).astimezone(timezone.utc).date().isoformat()
    due = training.candidates(hub_db.get_engine())
    if not due:
        return dg.SkipReason("no active accounting integration has the AI assist on")
    return [dg.RunRequest(run_key=f"{store.partition_key(provider, iid)}:{day}", partition_key=store.partition_key(provider, iid),
                          tags={"trigger": "nightly"}) for iid, provider in due]


@dg.sensor(
    name="ai_feedback_sensor",
    job=ai_training_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Trains an integration's model again once {FEEDBACK_RETRAIN} verdicts arrived since its newest one.",
)
def ai_feedback_sensor(context: dg.SensorEvaluationContext, hub_db: HubDatabase):
    from hub.ai import training  # see the module docstring

    engine = hub_db.get_engine()
    fresh = training.new_feedback(engine)
    wanted = {iid: provider for iid, provider in training.candidates(engine)}
    requests = [dg.RunRequest(run_key=f"{store.partition_key(wanted[iid], iid)}:feedback:{last}",
                              partition_key=store.partition_key(wanted[iid], iid), tags={"trigger": "feedback"})
                for iid, last in sorted(fresh.items()) if iid in wanted]
    return requests or dg.SkipReason("no integration has enough new feedback")


AI_ASSETS = [line_coding_model]
AI_JOBS = [ai_training_job]
AI_SCHEDULES = [ai_training_nightly_schedule]
AI_SENSORS = [ai_feedback_sensor]
