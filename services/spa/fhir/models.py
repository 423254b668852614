"""Where the replies to a BaRS referral go: the sender's registered endpoint, and what each
reply names of the message that made the referral."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.clock import clock_default
from services.shared.db import UTCDateTime
from services.spa.base import Base


class BarsReplyRoute(Base):
    """One per referral that came in by BaRS and whose sender registered the endpoint its
    message named as ``MessageHeader.source.endpoint``."""

    __tablename__ = "bars_reply_routes"

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    # MessageHeader.response.identifier of every reply: the id of the message answered.
    request_message_id: Mapped[str] = mapped_column(String(128))
    correlation_id: Mapped[str] = mapped_column(String(64))
    # Bundle.meta.versionId of the message: replies are of the same BaRS version.
    bars_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default)
