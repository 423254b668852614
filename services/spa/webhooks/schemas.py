"""Wire models of subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from services.shared.outbox import JobStatus
from services.shared.pagination import Page
from services.shared.vocabulary import Channel
from services.spa.webhooks.events import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]
Url = Annotated[str, Field(min_length=8, max_length=2048)]
# Headers of the subscriber's own: a token name, and a printable value. Those the delivery sets
# itself (the signature, the content) cannot be replaced.
HeaderName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
HeaderValue = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[\x20-\x7e]+$")]
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "webhook-id", "webhook-timestamp",
     "webhook-signature", "transfer-encoding", "connection", "user-agent"}
)  # fmt: skip


def _no_reserved(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    reserved = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
    if reserved:
        raise ValueError(f"these headers are set by the delivery itself: {', '.join(reserved)}")
    if len({name.lower() for name in headers}) != len(headers):
        raise ValueError("a header is named twice")
    return headers


ExtraHeaders = Annotated[
    dict[HeaderName, HeaderValue] | None,
    Field(max_length=8, description="Sent with every delivery (e.g. an API key); write-only"),
    AfterValidator(_no_reserved),
]
# Free text of the subscriber's own: printable, no control characters.
Description = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    description: Description | None = None
    event_types: list[EventType] = Field(
        default_factory=list, max_length=32, description="Empty for every event type"
    )
    localities: list[Code] = Field(default_factory=list, max_length=32)
    teams: list[Code] = Field(default_factory=list, max_length=64)
    channels: list[Channel] = Field(
        default_factory=list, max_length=16, description="Empty for every channel"
    )
    headers: ExtraHeaders = None


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    description: Description | None = None
    event_types: list[EventType] | None = Field(default=None, max_length=32)
    localities: list[Code] | None = Field(default=None, max_length=32)
    teams: list[Code] | None = Field(default=None, max_length=64)
    channels: list[Channel] | None = Field(default=None, max_length=16)
    headers: ExtraHeaders = Field(default=None, description="Replaces them all; {} for none")
    enabled: bool | None = None


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    localities: list[str]
    teams: list[str]
    channels: list[str]
    header_names: list[str] = Field(description="The names of its own headers; never the values")
    enabled: bool
    disabled_reason: str | None
    previous_secret_until: datetime | None = Field(
        description="Until when the previous secret also signs, during a rotation"
    )
    created_at: datetime


class SubscriptionWithSecret(SubscriptionRead):
    secret: str = Field(description="Shown once: keep it to verify signatures")


class RotationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=86400, ge=0, le=7 * 86400, description="How long the old secret also signs"
    )


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: uuid.UUID
    event_type: str
    status: JobStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    response_status: int | None
    latency_ms: float
    response_body: str | None
    error: str | None


class MessageLog(MessageRead):
    attempts_log: list[AttemptRead]


class MessagePage(Page[MessageRead]):
    """A subscription's messages, newest first."""


class RecoveryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime


class RecoveryRead(BaseModel):
    requeued: int


class SubscriptionPage(Page[SubscriptionRead]):
    """A client's subscriptions, oldest first."""
