"""What spa keeps only for a while: expired idempotency records, delivered webhook messages
and their attempts, finished outbox jobs and timers, heartbeats of workers long gone, console sessions that
have ended. Webhook events stay (each referral's
next ``seq`` is counted from them), as do failed messages (they wait for a replay) and every
care and audit record."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select

from services.shared import heartbeats
from services.shared.outbox import JobStatus
from services.shared.retention import Rule
from services.spa.console.models import ConsoleSession
from services.spa.console.sessions import SIGN_IN_LIFETIME
from services.spa.heartbeats import WorkerHeartbeat
from services.spa.referrals.models import IdempotencyRecord, OutboxJob, ReferralTimer
from services.spa.settings import SpaSettings
from services.spa.webhooks.models import WebhookAttempt, WebhookMessage


def rules(settings: SpaSettings) -> list[Rule]:
    delivered = timedelta(days=settings.retention_delivered_message_days)
    finished = timedelta(days=settings.retention_done_job_days)
    idle = max(timedelta(minutes=settings.console_session_idle_minutes), SIGN_IN_LIFETIME)

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

    def ended_session(now: datetime) -> ColumnElement[bool]:
        """Past its longest, or idle longer than any session may be (what a browser still
        holds opens nothing either way: see console/sessions.py)."""
        return or_(ConsoleSession.expires_at < now, ConsoleSession.last_seen_at < now - idle)

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
        Rule("console_sessions", ConsoleSession, ended_session),
    ]
