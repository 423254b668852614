"""spa's audit trail: a record for every access to patient data (see services.shared.audit)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.shared import audit
from services.shared.audit import AuditColumns, AuditHeadColumns
from services.spa.base import Base


class AuditEvent(AuditColumns, Base):
    __tablename__ = "audit_events"


class AuditHead(AuditHeadColumns, Base):
    __tablename__ = "audit_head"


def record_access(
    session: AsyncSession,
    *,
    client_id: str,
    action: str,
    resource_type: str,
    resource_id: object,
    outcome: str = "allowed",
    purpose: str = audit.DIRECT_CARE,
) -> None:
    """Add an audit record to the caller's transaction, so it commits with what it records."""
    audit.record(
        session,
        AuditEvent,
        client_id=client_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        purpose=purpose,
    )
