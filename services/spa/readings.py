"""What spa's metrics read from its database when scraped, beside the outbox queues and the
heartbeats (``services.shared.metrics.ScrapeReadings``): the response clocks running late."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.spa.queue import service as queue
from services.spa.referrals.models import Referral
from services.spa.referrals.service import OPEN_STATUSES


async def response_clocks(session: AsyncSession, now: datetime) -> list[Metric]:
    """Open cases past their at-risk point whose clock has not yet breached, and open cases
    whose clock breached (the coordinators' escalation lists)."""
    at_risk = GaugeMetricFamily(
        "spa_response_clocks_at_risk",
        "Open cases past their response clock's at-risk point, not yet breached",
    )
    breached = GaugeMetricFamily(
        "spa_response_clocks_breached",
        "Open cases whose response clock (or safeguarding acknowledgement) was breached",
    )
    at_risk.add_metric([], float(await session.scalar(_at_risk()) or 0))
    escalated = select(func.count()).where(
        Referral.escalated_at.is_not(None), Referral.status.in_(OPEN_STATUSES)
    )
    breached.add_metric([], float(await session.scalar(escalated) or 0))
    return [at_risk, breached]


def _at_risk() -> Any:
    return select(func.count()).where(*queue.at_risk())
