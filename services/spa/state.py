"""spa's state for its lifetime: what ``create_app``'s lifespan opens (see
``services.shared.state``). The workers are there only where this process runs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.shared.state import ServiceState

if TYPE_CHECKING:
    import asyncio

    from services.shared.hardening import RateLimits
    from services.shared.outbox import OutboxBatchWorker, OutboxWorker
    from services.shared.wake_listener import WakeListener
    from services.spa.console.oidc import IdentityProvider
    from services.spa.fhir.mapping import CodeMapping
    from services.spa.identity.keys import SigningKeys
    from services.spa.referrals.clock_keeper import ClockKeeper
    from services.spa.referrals.clocks import ClockPolicy
    from services.spa.referrals.waiting import StatusWatch
    from services.spa.settings import SpaSettings
    from services.spa.wakeups import Wakeups
    from services.spa.webhooks.service import UrlPolicy


class SpaState(ServiceState):
    settings: SpaSettings
    # The built-in token issuer, where it is enabled.
    signing_keys: SigningKeys
    hash_checks: asyncio.Semaphore
    token_limits: dict[str, RateLimits]
    # Intake and the lifecycle.
    status_watch: StatusWatch
    clock_policy: ClockPolicy
    bars_mapping: CodeMapping
    wakeups: Wakeups
    webhook_url_policy: UrlPolicy
    # The background workers, in the process that runs them.
    worker: OutboxWorker
    timers: OutboxWorker
    clock_keeper: ClockKeeper
    wake_listener: WakeListener | None
    webhook_dispatcher: OutboxBatchWorker
    webhook_deliverer_worker: OutboxWorker
    # The console's sign-in with the organisation's identity provider, where one is configured.
    console_identity_provider: IdentityProvider | None
