"""spa's own metrics beside those every service has: what happens to referrals, deliveries to
subscribers and BaRS senders, and response clocks. Each is counted once its transaction has
committed (``services.shared.metrics.count_after_commit``), so a rolled-back attempt, retried
later, is counted once, when it succeeds."""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.metrics import ServiceMetrics, count_after_commit, metrics_of

Measure = Literal["received", "routed", "redirected", "queued", "deliveries", "at_risk", "breached"]


class SpaMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("spa")

        def counter(name: str, documentation: str, labels: list[str]) -> Counter:
            return Counter(name, documentation, labels, registry=self.registry)

        self.received = counter(
            "spa_referrals_received_total", "Referrals taken in, by channel", ["channel"]
        )
        self.routed = counter(
            "spa_referrals_routed_total",
            "Referrals routed to a team, by pathway and the team's type",
            ["pathway", "team_type"],
        )
        self.redirected = counter(
            "spa_referrals_redirected_total", "Referrals redirected to emergency services", []
        )
        self.queued = counter(
            "spa_referrals_queued_total",
            "Referrals put in the call handlers' queue, by why they wait there",
            ["queue_reason"],
        )
        self.deliveries = counter(
            "spa_deliveries_total",
            "Webhook messages and BaRS replies sent, by kind (webhook, bars_reply) and outcome"
            " (delivered, failed and to be retried, gave_up, endpoint_gone)",
            ["kind", "outcome"],
        )
        self.at_risk = counter(
            "spa_response_clocks_at_risk_total",
            "Response clocks that reached their at-risk point, by clock",
            ["clock"],
        )
        self.breached = counter(
            "spa_response_clocks_breached_total", "Response clocks breached, by clock", ["clock"]
        )


def count(session: AsyncSession, measure: Measure, **labels: str) -> None:
    """Count one of ``measure`` when ``session`` commits (nothing outside the app)."""
    metrics = metrics_of(session)
    if isinstance(metrics, SpaMetrics):
        counter: Counter = getattr(metrics, measure)
        count_after_commit(session, counter, **labels)
