from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.db import Timestamped, UTCDateTime
from services.spa.base import Base


class Client(Timestamped, Base):
    """A registered calling system: a GP system, an ambulance CAD, a call-handler front-end, or
    one of our own services. Only a hash of its secret is kept."""

    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(256))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    audiences: Mapped[list[str]] = mapped_column(JSON)
    # The intake channels a referrer may post on (empty for clients that do not post referrals).
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The teams (by code) whose caseload and capacity a team's own system may manage.
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The localities (by code, or "*" for all) whose call-handler queue the client works.
    localities: Mapped[list[str]] = mapped_column(JSON, default=list)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
