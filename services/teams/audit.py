"""teams' audit trail: a record for every access to a caseload (see services.shared.audit)."""

from services.shared.audit import AuditColumns, AuditHeadColumns
from services.teams.base import Base


class AuditEvent(AuditColumns, Base):
    """Access to patient-related data (see services.shared.audit)."""

    __tablename__ = "audit_events"


class AuditHead(AuditHeadColumns, Base):
    __tablename__ = "audit_head"
