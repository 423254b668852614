"""An audit record for every access to patient data: who, when, which client, which request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.clock import utcnow
from services.shared.db import UTCDateTime
from services.shared.logging import current_request_id
from services.spa.base import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))


def record_access(
    session: AsyncSession,
    *,
    client_id: str,
    action: str,
    resource_type: str,
    resource_id: object,
    outcome: str = "allowed",
) -> None:
    """Add an audit record to the caller's transaction, so it commits with what it records."""
    session.add(
        AuditEvent(
            client_id=client_id,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id),
            request_id=current_request_id(),
            outcome=outcome,
        )
    )
