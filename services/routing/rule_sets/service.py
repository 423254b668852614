"""Rule sets as versioned data: upload (checked), activate, shadow, roll back; every change audited.

Each scope has at most one active version and at most one shadow version. "county" is the
default table; a locality's table, when it has one, replaces the county's for referrals from
that locality's practices. A shadow version is evaluated beside the active one on live
traffic; where it would have decided differently the disagreement is recorded, and routing is
unaffected.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.routing.rule_sets.models import RuleSetEvent, RuleSetVersion
from services.routing.rule_sets.models import RuleSetStatus as R
from services.routing.rule_sets.problems import (
    NothingToRollBack,
    RuleSetExists,
    RuleSetNotFound,
    RuleSetRejected,
    RuleSetStateConflict,
)
from services.routing.rule_sets.schemas import SampleReferral
from services.routing.rules.checks import check_rule_set
from services.routing.rules.evaluation import Facts
from services.routing.rules.language import RuleSet
from services.routing.rules.parsing import default_document, load_rule_set
from services.shared.logging import current_request_id

COUNTY = "county"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadedRuleSet:
    id: uuid.UUID
    scope: str
    version: str
    rules: RuleSet


@dataclass(frozen=True)
class ScopeRules:
    active: LoadedRuleSet
    shadow: LoadedRuleSet | None = None


def facts_of(request: SampleReferral) -> Facts:
    return Facts(
        channel=request.channel,
        urgency=request.urgency,
        needs=frozenset(request.needs),
        red_flags=frozenset(request.red_flags),
        age_years=request.age_years,
        safeguarding_concern=request.safeguarding_concern,
    )


def parse(document: str, source: str) -> RuleSet:
    """The rule set in ``document``, or RuleSetRejected listing every error in it."""
    try:
        return load_rule_set(document, source)
    except ValueError as exc:
        errors = getattr(exc, "errors", None) or [
            {"file": source, "rule": "", "field": "", "reason": str(exc)}
        ]
        raise RuleSetRejected(
            "The rule set is invalid; nothing was stored.", errors=errors
        ) from None


class RuleBook:
    """The active and shadow rule sets of every scope, re-read after ``ttl`` seconds so that
    every replica follows an activation promptly without a query per decision."""

    def __init__(self, ttl_seconds: float = 2.0) -> None:
        self._ttl = ttl_seconds
        self._read_at = float("-inf")
        self._scopes: dict[str, ScopeRules] = {}
        self._parsed: dict[uuid.UUID, RuleSet] = {}

    def invalidate(self) -> None:
        self._read_at = float("-inf")

    async def scopes(self, session: AsyncSession) -> dict[str, ScopeRules]:
        if time.monotonic() - self._read_at > self._ttl:
            rows = await session.scalars(
                select(RuleSetVersion).where(RuleSetVersion.status.in_((R.ACTIVE, R.SHADOW)))
            )
            active: dict[str, LoadedRuleSet] = {}
            shadow: dict[str, LoadedRuleSet] = {}
            for row in rows:
                (active if row.status == R.ACTIVE else shadow)[row.scope] = self._loaded(row)
            self._scopes = {
                scope: ScopeRules(loaded, shadow.get(scope)) for scope, loaded in active.items()
            }
            self._read_at = time.monotonic()
        return self._scopes

    def _loaded(self, row: RuleSetVersion) -> LoadedRuleSet:
        if row.id not in self._parsed:
            self._parsed[row.id] = parse(row.document, f"{row.scope}/{row.version}")
        return LoadedRuleSet(row.id, row.scope, row.version, self._parsed[row.id])


def _record(session: AsyncSession, row: RuleSetVersion, action: str, actor: str) -> None:
    session.add(
        RuleSetEvent(
            rule_set_id=row.id, action=action, actor=actor, request_id=current_request_id()
        )
    )


async def upload(session: AsyncSession, scope: str, document: str, actor: str) -> RuleSetVersion:
    rule_set = parse(document, f"{scope} upload")
    existing = await session.scalar(
        select(RuleSetVersion).where(
            RuleSetVersion.scope == scope, RuleSetVersion.version == rule_set.version
        )
    )
    if existing is not None:
        raise RuleSetExists(f"{scope} already has a rule set version {rule_set.version}.")
    row = RuleSetVersion(
        id=uuid.uuid4(),
        scope=scope,
        version=rule_set.version,
        status=R.DRAFT,
        document=document,
        checksum=hashlib.sha256(document.encode()).hexdigest(),
        findings=_warnings(rule_set),
        uploaded_by=actor,
    )
    session.add(row)
    await session.flush()  # the row first: its events refer to it
    _record(session, row, "uploaded", actor)
    await session.flush()
    return row


def _warnings(rule_set: RuleSet) -> list[dict[str, str | None]]:
    return [
        {"severity": f.severity, "rule": f.rule, "field": f.field, "message": f.message}
        for f in check_rule_set(rule_set)
    ]


async def get(session: AsyncSession, rule_set_id: uuid.UUID) -> RuleSetVersion:
    row = await session.get(RuleSetVersion, rule_set_id, with_for_update=True)
    if row is None:
        raise RuleSetNotFound(f"No rule set has the id {rule_set_id}.")
    return row


async def _in_scope(session: AsyncSession, scope: str, status: R) -> RuleSetVersion | None:
    return await session.scalar(
        select(RuleSetVersion)
        .where(RuleSetVersion.scope == scope, RuleSetVersion.status == status)
        .with_for_update()
    )


async def activate(session: AsyncSession, row: RuleSetVersion, actor: str, now: datetime) -> None:
    if row.status == R.ACTIVE:
        raise RuleSetStateConflict(f"{row.scope}/{row.version} is already active.")
    parse(row.document, f"{row.scope}/{row.version}")  # a version that fails checks never goes live
    current = await _in_scope(session, row.scope, R.ACTIVE)
    if current is not None:
        current.status = R.SUPERSEDED
        _record(session, current, "superseded", actor)
        await session.flush()
    row.status = R.ACTIVE
    row.activated_at = now
    _record(session, row, "activated", actor)
    await session.flush()


async def shadow(session: AsyncSession, row: RuleSetVersion, actor: str) -> None:
    if row.status in (R.ACTIVE, R.SHADOW):
        raise RuleSetStateConflict(
            f"{row.scope}/{row.version} is {row.status}; shadow a draft instead."
        )
    current = await _in_scope(session, row.scope, R.SHADOW)
    if current is not None:
        current.status = R.DRAFT
        _record(session, current, "unshadowed", actor)
        await session.flush()
    row.status = R.SHADOW
    _record(session, row, "shadowed", actor)
    await session.flush()


async def rollback(session: AsyncSession, scope: str, actor: str, now: datetime) -> RuleSetVersion:
    """Make the version active before the current one active again."""
    current = await _in_scope(session, scope, R.ACTIVE)
    previous = await session.scalar(
        select(RuleSetVersion)
        .where(RuleSetVersion.scope == scope, RuleSetVersion.status == R.SUPERSEDED)
        .order_by(RuleSetVersion.activated_at.desc())
        .limit(1)
    )
    if current is None or previous is None:
        raise NothingToRollBack(f"{scope} has no earlier active version to go back to.")
    current.status = R.ROLLED_BACK
    _record(session, current, "rolled_back", actor)
    await session.flush()
    previous.status = R.ACTIVE
    previous.activated_at = now
    _record(session, previous, "activated", actor)
    await session.flush()
    return previous


async def ensure_county_default(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> None:
    """Activate the packaged county rule set when the county has no active one (first start)."""
    async with sessionmaker() as session:
        if await _in_scope(session, COUNTY, R.ACTIVE) is not None:
            return
        document = default_document()
        try:
            async with session.begin_nested():
                row = await upload(session, COUNTY, document, "system")
                await activate(session, row, "system", now)
            await session.commit()
        except (IntegrityError, RuleSetExists) as exc:
            # Another replica did it first, or that version exists and was retired on purpose.
            await session.rollback()
            log.warning("default_rules_not_activated", reason=type(exc).__name__)
