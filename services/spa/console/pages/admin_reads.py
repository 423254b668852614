"""What the administration pages read from routing and teams: the few fields of their answers
that the pages show, declared here because spa imports neither service. Unknown fields are
ignored, so either service may add to its answers without breaking these pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Finding(BaseModel):
    """One result of routing's static checks on a rule set."""

    severity: str
    rule: str | None = None
    field: str | None = None
    message: str


class RuleSetVersion(BaseModel):
    id: str
    scope: str
    version: str
    status: str
    checksum: str
    findings: list[Finding] = Field(default_factory=list)
    uploaded_by: str
    created_at: datetime
    activated_at: datetime | None = None


class RuleSetPage(BaseModel):
    items: list[RuleSetVersion]
    next_cursor: str | None = None


class Locality(BaseModel):
    code: str
    name: str
    operating_model: str
    postcode_districts: list[str] = Field(default_factory=list)
    out_of_hours: str | None = None


class Practice(BaseModel):
    ods_code: str
    name: str
    locality: str


class TeamEntry(BaseModel):
    code: str
    name: str
    type: str
    locality: str | None = None
    backup: str | None = None


class Directory(BaseModel):
    localities: list[Locality]
    practices: list[Practice]
    teams: list[TeamEntry]


class Capacity(BaseModel):
    available: int | None = None
    maximum: int | None = None
    unit: str | None = None
    updated: datetime | None = None
    known: bool = False
    operating_status: str


class TeamCapacity(BaseModel):
    code: str
    capacity: Capacity


class TeamPage(BaseModel):
    items: list[TeamCapacity]
    next_cursor: str | None = None


class DirectoryChange(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_code: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class DirectoryChangePage(BaseModel):
    items: list[DirectoryChange]
    next_cursor: str | None = None
