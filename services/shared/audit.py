"""The audit trail every service keeps of access to patient data: append-only, tamper-evident.

A request adds its audit record to its own transaction, so the record commits with what it
records and costs the request no lock. A sealer then chains the committed records in the order
it finds them: each gets the next ``seq``, the previous record's hash, and a hash of its own
fields and that previous hash (SHA-256). Editing, deleting or inserting a sealed record breaks
the chain from that point, and ``verify`` says where; so does a record numbered past the head,
which would also take the next record's number, so the sealer stops there rather than fail at
every turn. The head of the chain is logged each time it moves, so a copy of it lives outside
the database: rewriting the whole chain from some point on would not match the logged heads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import BigInteger, Integer, String, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from services.shared.clock import Clock, clock_default
from services.shared.db import UTCDateTime, create_engine, create_sessionmaker, keep_on_failure
from services.shared.logging import current_request_id

log = structlog.get_logger(__name__)

GENESIS = "0" * 64

# Why patient data was touched (the purposes of the data-protection notice).
DIRECT_CARE = "direct_care"
SERVICE_MANAGEMENT = "service_management"
AUDIT = "audit"

_BigId = BigInteger().with_variant(Integer, "sqlite")


class AuditColumns:
    """One access: who (client), why (purpose), what (action on a resource), when, in which
    request, and whether it was allowed. Never patient details: the resource is an id."""

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_default, index=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    purpose: Mapped[str] = mapped_column(String(32), default=DIRECT_CARE)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    # Set when sealed: the place in the chain, the hash before, this record's hash.
    seq: Mapped[int | None] = mapped_column(_BigId, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditHeadColumns:
    """The chain's head: one row, locked while sealing so replicas seal one at a time."""

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(_BigId, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def entry(
    model: type[Any],
    *,
    client_id: str,
    action: str,
    resource_type: str,
    resource_id: object,
    outcome: str = "allowed",
    purpose: str = DIRECT_CARE,
) -> Any:
    """A new audit record of ``model``, for the caller to add to its transaction."""
    return model(
        client_id=client_id,
        purpose=purpose,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id)[:64],
        request_id=current_request_id(),
        outcome=outcome,
    )


def record(session: AsyncSession, model: type[Any], **fields: Any) -> None:
    """Add an audit record to the caller's transaction, so it commits with what it records. If
    the request ends in a problem instead (a refusal, a conflict), the record is still kept:
    every access is audited, whatever the answer was."""
    session.add(entry(model, **fields))
    keep_on_failure(session, lambda: entry(model, **fields))


def digest(record: Any, seq: int, prev_hash: str) -> str:
    fields = {
        "seq": seq,
        "prev": prev_hash,
        "at": record.at.isoformat(),
        "client_id": record.client_id,
        "purpose": record.purpose,
        "action": record.action,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "request_id": record.request_id,
        "outcome": record.outcome,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def seal(
    session: AsyncSession, model: type[Any], head_model: type[Any], *, limit: int = 1000
) -> int:
    """Chain the unsealed records, oldest first; the number sealed. Call in a transaction."""
    head = await session.get(head_model, 1, with_for_update=True)
    if head is None:
        head = head_model(id=1, seq=0, hash=GENESIS)
        session.add(head)
    # A record numbered past the head holds the number the next record would take.
    beyond = await session.scalar(select(func.min(model.seq)).where(model.seq > head.seq))
    if beyond is not None:
        raise ChainBroken(beyond, PAST_THE_HEAD)
    records = list(
        await session.scalars(
            select(model).where(model.seq.is_(None)).order_by(model.id).limit(limit)
        )
    )
    if not records:
        return 0
    seq, prev = head.seq, head.hash
    rows = []
    for record in records:
        seq += 1
        current = digest(record, seq, prev)
        rows.append({"record": record.id, "new_seq": seq, "new_prev": prev, "new_hash": current})
        prev = current
    table = model.__table__
    connection = await session.connection()
    await connection.execute(
        update(table)
        .where(table.c.id == bindparam("record"), table.c.seq.is_(None))
        .values(
            seq=bindparam("new_seq"), prev_hash=bindparam("new_prev"), hash=bindparam("new_hash")
        ),
        rows,
    )
    head.seq, head.hash = seq, prev
    log.info("audit_sealed", table=table.name, head_seq=seq, head_hash=prev, sealed=len(rows))
    return len(rows)


PAST_THE_HEAD = "a record is numbered past the chain's head"


class ChainBroken(Exception):
    """Sealing would extend a chain already broken at ``at``: it stops until that is dealt with."""

    def __init__(self, at: int, reason: str) -> None:
        super().__init__(f"the audit chain is broken at seq {at}: {reason}")
        self.at = at
        self.reason = reason


@dataclass(frozen=True)
class Verification:
    checked: int
    unsealed: int
    head_seq: int
    broken_at: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


# Where the chain breaks and why; None while it holds.
_Break = tuple[int, str] | None


async def verify(
    session: AsyncSession, model: type[Any], head_model: type[Any], *, page: int = 5000
) -> Verification:
    """Walk the chain from the start to its recorded head: every hash recomputed, every link
    and number checked. Records sealed while the walk runs are past the head read at its
    start and are left for the next walk; a sealed record numbered outside 1..head (past the
    head as it stands when the walk ends), or a number missing, is a break."""
    head = await session.get(head_model, 1)
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    checked, broken = 0, await _outside_the_chain(session, model, head is None)
    if broken is None:
        checked, broken = await _walk(session, model, head_seq, head_hash, page)
    if broken is None:
        broken = await _past_the_head(session, model, head_model)
    unsealed = await session.scalar(
        select(func.count()).select_from(model).where(model.seq.is_(None))
    )
    at, reason = broken if broken is not None else (None, None)
    return Verification(checked, unsealed or 0, head_seq, broken_at=at, reason=reason)


async def _outside_the_chain(session: AsyncSession, model: type[Any], headless: bool) -> _Break:
    if headless and await session.scalar(select(func.count()).where(model.seq.is_not(None))):
        return 1, "the chain's head is missing"
    outside = await session.scalar(
        select(func.min(model.seq)).where(model.seq.is_not(None), model.seq <= 0)
    )
    return (outside, "a record is numbered outside the chain") if outside is not None else None


async def _walk(
    session: AsyncSession, model: type[Any], head_seq: int, head_hash: str, page: int
) -> tuple[int, _Break]:
    """The records checked from 1 to ``head_seq``, and the first break among them."""
    expected_seq, prev = 1, GENESIS
    while expected_seq <= head_seq:
        records = list(
            await session.scalars(
                select(model)
                .where(model.seq >= expected_seq, model.seq <= head_seq)
                .order_by(model.seq)
                .limit(page)
            )
        )
        if not records:
            break
        for record in records:
            broken = _link_broken(record, expected_seq, prev)
            if broken is not None:
                return expected_seq - 1, broken
            prev, expected_seq = record.hash, expected_seq + 1
    checked = expected_seq - 1
    if checked != head_seq or prev != head_hash:
        return checked, (checked + 1, "the chain does not reach its recorded head")
    return checked, None


def _link_broken(record: Any, expected_seq: int, prev: str) -> _Break:
    if record.seq != expected_seq:
        return expected_seq, "a record is missing"
    if record.prev_hash != prev:
        return record.seq, "the link to the record before is broken"
    if record.hash != digest(record, record.seq, prev):
        return record.seq, "the record was changed"
    return None


async def _past_the_head(session: AsyncSession, model: type[Any], head_model: type[Any]) -> _Break:
    """A record numbered past the head: compared with the head in one statement, so that a
    sealer moving the head meanwhile (records and head commit together) is no break."""
    head_now = select(head_model.seq).where(head_model.id == 1).scalar_subquery()
    beyond = await session.scalar(select(func.min(model.seq)).where(model.seq > head_now))
    return (beyond, PAST_THE_HEAD) if beyond is not None else None


class AuditSealer:
    """Seals every ``interval`` seconds while the app runs (every replica may run one). On a
    chain broken past its head it says so once (``audit_chain_broken``) and stops sealing:
    records wait unsealed, checked again every ``recheck_interval`` seconds, until the stray
    record has been dealt with."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
        head_model: type[Any],
        *,
        interval: float = 1.0,
        recheck_interval: float = 60.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model = model
        self._head = head_model
        self._interval = interval
        self._recheck_interval = recheck_interval
        self._stop = asyncio.Event()
        self.broken: ChainBroken | None = None

    async def seal_now(self) -> int:
        """Seal everything waiting; raises ``ChainBroken`` rather than extend a broken chain."""
        sealed = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                count = await seal(session, self._model, self._head)
            sealed += count
            if count == 0:
                return sealed

    async def run(self) -> None:
        while not self._stop.is_set():
            await self._seal_or_report()
            pause = self._recheck_interval if self.broken is not None else self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=pause)

    async def _seal_or_report(self) -> None:
        table = self._model.__tablename__
        try:
            await self.seal_now()
        except ChainBroken as broken:
            if self.broken is None:
                log.error(
                    "audit_chain_broken", table=table, broken_at=broken.at, reason=broken.reason
                )
            self.broken = broken
            return
        except Exception as exc:  # the loop must outlive any one failure
            log.error("audit_seal_failed", table=table, error_type=type(exc).__name__)
            return
        if self.broken is not None:
            log.warning("audit_sealing_resumed", table=table, broken_at=self.broken.at)
            self.broken = None

    def stop(self) -> None:
        self._stop.set()


# The command's exit statuses.
INTACT, BROKEN, UNREADABLE = 0, 1, 2


async def verify_database(
    database_url: str, model: type[Any], head_model: type[Any], clock: Clock
) -> int:
    """The ``audit-verify`` command: seal what is waiting, walk the chain, print the verdict as
    one JSON line; exit status 0 when intact, 1 when broken, 2 when the trail could not be read
    (the verdict then says so, never a traceback)."""
    try:
        result = await _seal_and_verify(database_url, model, head_model, clock)
    except Exception as exc:
        log.error("audit_verify_failed", error_type=type(exc).__name__)
        verdict = {"intact": None, "error": "the audit trail could not be read"}
        print(json.dumps({**verdict, "error_type": type(exc).__name__}))
        return UNREADABLE
    print(json.dumps({"intact": result.intact, **dataclasses.asdict(result)}))
    return INTACT if result.intact else BROKEN


async def _seal_and_verify(
    database_url: str, model: type[Any], head_model: type[Any], clock: Clock
) -> Verification:
    engine = create_engine(database_url, clock=clock)
    try:
        sessionmaker = create_sessionmaker(engine)
        # A chain broken past its head is not sealed further; the walk says where it breaks.
        with contextlib.suppress(ChainBroken):
            await AuditSealer(sessionmaker, model, head_model).seal_now()
        async with sessionmaker() as session:
            return await verify(session, model, head_model)
    finally:
        await engine.dispose()
