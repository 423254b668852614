"""What spa keeps only for a while: expired idempotency records, delivered webhook messages
and their attempts, finished outbox jobs and timers, heartbeats of workers long gone. Webhook events stay (each referral's
next ``seq`` is counted from them), as do failed messages (they wait for a replay) and every
care and audit record."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, select

from services.shared import heartbeats
from services.shared.outbox import JobStatus
from services.shared.retention import Rule
from services.spa.heartbeats import WorkerHeartbeat
from services.spa.referrals.models import IdempotencyRecord, OutboxJob, ReferralTimer
from services.spa.settings import SpaSettings
from services.spa.webhooks.models import WebhookAttempt, WebhookMessage


def rules(settings: SpaSettings) -> list[Rule]:
    delivered = timedelta(days=settings.retention_delivered_message_days)
    finished = timedelta(days=settings.retention_done_job_days)

    def delivered_before(now: datetime) -> ColumnElement[bool]:
        return and_(
            WebhookMessage.status == JobStatus.DONE,
            WebhookMessage.delivered_at < now - delivered,
        )

    def attempts_of_delivered(now: datetime) -> ColumnElement[bool]:
        return WebhookAttempt.message_id.in_(select(WebhookMessage.id).where(delivered_before(now)))

    def done_job(now: datetime) -> ColumnElement[bool]:
        return and_(OutboxJob.status == JobStatus.DONE, OutboxJob.updated_at < now - finished)

    def done_timer(now: datetime) -> ColumnElement[bool]:
        return and_(
            ReferralTimer.status == JobStatus.DONE, ReferralTimer.updated_at < now - finished
        )

    return [
        Rule(
            "idempotency_records", IdempotencyRecord, lambda now: IdempotencyRecord.expires_at < now
        ),
        # Attempts before their messages, which they refer to.
        Rule("webhook_attempts", WebhookAttempt, attempts_of_delivered),
        Rule("webhook_messages", WebhookMessage, delivered_before),
        Rule("outbox_jobs", OutboxJob, done_job),
        Rule("referral_timers", ReferralTimer, done_timer),
        Rule(
            "worker_heartbeats", WorkerHeartbeat, lambda now: heartbeats.gone(WorkerHeartbeat, now)
        ),
    ]
