"""The audit trail every service keeps of access to patient data: append-only, tamper-evident.

A request adds its audit record to its own transaction, so the record commits with what it
records and costs the request no lock. A sealer then chains the committed records in the order
it finds them: each gets the next ``seq``, the previous record's hash, and a hash of its own
fields and that previous hash (SHA-256). Editing, deleting or inserting a sealed record breaks
the chain from that point, and ``verify`` says where. The head of the chain is logged each time
it moves, so a copy of it lives outside the database: rewriting the whole chain from some point
on would not match the logged heads.
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
from services.shared.db import UTCDateTime, create_engine, create_sessionmaker
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
    """Add an audit record to the caller's transaction, so it commits with what it records."""
    session.add(entry(model, **fields))


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


async def verify(
    session: AsyncSession, model: type[Any], head_model: type[Any], *, page: int = 5000
) -> Verification:
    """Walk the chain from the start to its recorded head: every hash recomputed, every link
    and number checked. Records sealed while the walk runs are past the head read at its
    start and are left for the next walk; a sealed record outside 1..head is a break."""
    head = await session.get(head_model, 1)
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    outside = await session.scalar(
        select(func.min(model.seq)).where(model.seq.is_not(None), model.seq <= 0)
    )
    if head is None and await session.scalar(select(func.count()).where(model.seq.is_not(None))):
        return _broken(0, 1, "the chain's head is missing", head_seq)
    if outside is not None:
        return _broken(0, outside, "a record is numbered outside the chain", head_seq)
    expected_seq, prev, checked = 1, GENESIS, 0
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
            if record.seq != expected_seq:
                return _broken(checked, expected_seq, "a record is missing", head_seq)
            if record.prev_hash != prev:
                return _broken(
                    checked, record.seq, "the link to the record before is broken", head_seq
                )
            if record.hash != digest(record, record.seq, prev):
                return _broken(checked, record.seq, "the record was changed", head_seq)
            prev, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
    if checked != head_seq or prev != head_hash:
        return _broken(checked, checked + 1, "the chain does not reach its recorded head", head_seq)
    unsealed = await session.scalar(
        select(func.count()).select_from(model).where(model.seq.is_(None))
    )
    return Verification(checked=checked, unsealed=unsealed or 0, head_seq=head_seq)


def _broken(checked: int, at: int, reason: str, head_seq: int) -> Verification:
    return Verification(checked=checked, unsealed=0, head_seq=head_seq, broken_at=at, reason=reason)


class AuditSealer:
    """Seals every ``interval`` seconds while the app runs (every replica may run one)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Any],
        head_model: type[Any],
        *,
        interval: float = 1.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model = model
        self._head = head_model
        self._interval = interval
        self._stop = asyncio.Event()

    async def seal_now(self) -> int:
        sealed = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                count = await seal(session, self._model, self._head)
            sealed += count
            if count == 0:
                return sealed

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.seal_now()
            except Exception as exc:  # the loop must outlive any one failure
                log.error("audit_seal_failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)

    def stop(self) -> None:
        self._stop.set()


async def verify_database(
    database_url: str, model: type[Any], head_model: type[Any], clock: Clock
) -> int:
    """The ``audit-verify`` command: seal what is waiting, walk the chain, print the result;
    exit status 0 when intact, 1 when broken."""
    engine = create_engine(database_url, clock=clock)
    try:
        sessionmaker = create_sessionmaker(engine)
        await AuditSealer(sessionmaker, model, head_model).seal_now()
        async with sessionmaker() as session:
            result = await verify(session, model, head_model)
    finally:
        await engine.dispose()
    print(json.dumps({"intact": result.intact, **dataclasses.asdict(result)}))
    return 0 if result.intact else 1
