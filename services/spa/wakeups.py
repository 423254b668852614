"""The queues spa's requests put work on, each told at once when work is committed."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.shared.outbox import Wakeup


@dataclass(frozen=True)
class Wakeups:
    # Route, withdraw and escalate jobs (a new referral, a cancellation, an assessment).
    routing: Wakeup = field(default_factory=Wakeup)
    # Webhook messages (a test ping, a recovery).
    deliveries: Wakeup = field(default_factory=Wakeup)
    # Timers made due at once (a coordinator sending a case on); the rest fall due with time.
    timers: Wakeup = field(default_factory=Wakeup)
