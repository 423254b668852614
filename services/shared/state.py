"""What a service keeps for its lifetime on ``app.state``, declared as a type.

Each service has a state class (``SpaState``, ``RoutingState``, ``TeamsState``) naming every
resource its lifespan opens; ``build_app`` puts an instance on the app, the lifespan fills it,
and request dependencies and workers read it with ``state_of``, checked to be that class. The
resources are named and typed once per service, not at each place that reads one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from starlette.datastructures import State

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from services.shared.audit import AuditSealer
    from services.shared.auth import TokenVerifier
    from services.shared.clock import Clock
    from services.shared.hardening import RateLimits
    from services.shared.heartbeats import HeartbeatColumns
    from services.shared.metrics import ServiceMetrics
    from services.shared.outbox import OutboxJobColumns
    from services.shared.settings import ServiceSettings
    from services.shared.tracing import Tracing


class ServiceState(State):
    """What every service has: set by ``build_app`` (settings, clock), ``hardening`` (the rate
    limits) and ``service_resources`` (the rest)."""

    settings: ServiceSettings
    clock: Clock
    tracing: Tracing
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    verifier: TokenVerifier
    rate_limits: RateLimits
    audit_sealer: AuditSealer
    metrics: ServiceMetrics
    # The outbox queues (by name) and worker heartbeats that readiness and the metrics read.
    queues: dict[str, type[OutboxJobColumns]]
    heartbeat_model: type[HeartbeatColumns] | None


StateT = TypeVar("StateT", bound=ServiceState)


def state_of(app: Any, kind: type[StateT]) -> StateT:
    """``app.state`` as the service's state class (``app`` is the FastAPI app, or
    ``request.app``)."""
    state = app.state
    if not isinstance(state, kind):
        raise TypeError(f"app.state is a {type(state).__name__}, not a {kind.__name__}")
    return state
