"""routing's audit trail: a record for every access to a decision (see services.shared.audit)."""

from services.routing.base import Base
from services.shared.audit import AuditColumns, AuditHeadColumns


class AuditEvent(AuditColumns, Base):
    """Access to patient-related data (see services.shared.audit)."""

    __tablename__ = "audit_events"


class AuditHead(AuditHeadColumns, Base):
    __tablename__ = "audit_head"
