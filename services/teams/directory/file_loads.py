"""Loading a directory file again without losing what was changed since through the API.

A load leaves a record (kept by whoever loads, e.g. in a file beside the database): the file
it came from and a fingerprint of the directory as it stood after the load. A later load of
the file compares the directory with that fingerprint. The same, the file is loaded (or, if
the file is the same too, nothing is done); different, someone changed the directory since,
and it is kept unless the caller asks to replace it. Capacity and operating status reported by
the teams are not part of the directory file, so they never count as a change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.teams.directory.entries import DirectoryFile
from services.teams.directory.loading import (
    export_directory,
    load_directory,
    lock_directory,
    parse_directory,
    same_entries,
)
from services.teams.directory.models import DirectoryChange


class LoadAction(StrEnum):
    LOADED = "loaded"  # the directory was empty, or unchanged since the last load of a file
    UNCHANGED = "unchanged"  # the same file, and the directory as it left it: nothing to do
    KEPT = "kept"  # changed since it was loaded: left as it is
    REPLACED = "replaced"  # changed since it was loaded, and replaced as the caller asked


@dataclass(frozen=True)
class LoadRecord:
    """What a load left: where the file was, its digest, and the directory's fingerprint."""

    source: str
    source_sha256: str
    fingerprint: str
    last_change_id: int
    loaded_at: datetime

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "loaded_at": self.loaded_at.isoformat()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> LoadRecord:
        raw: dict[str, Any] = json.loads(text)
        return cls(**{**raw, "loaded_at": datetime.fromisoformat(raw["loaded_at"])})


@dataclass(frozen=True)
class ChangesSince:
    """The changes recorded since a load: how many, by whom, the last when."""

    count: int
    actors: list[str]
    last_at: datetime | None


@dataclass(frozen=True)
class LoadOutcome:
    action: LoadAction
    # The record to keep for the next load (the previous one when nothing was loaded).
    record: LoadRecord | None
    counts: dict[str, int] | None = None
    changed_since: ChangesSince | None = None

    def body(self) -> dict[str, Any]:
        found: dict[str, Any] = {"outcome": str(self.action)}
        if self.counts is not None:
            found["loaded"] = self.counts
        if self.changed_since is not None:
            since = self.changed_since
            found["changed_since_load"] = {
                "changes": since.count,
                "actors": since.actors,
                "last_at": since.last_at.isoformat() if since.last_at else None,
            }
        return found


def fingerprint(directory: DirectoryFile) -> str:
    canonical = json.dumps(directory.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class DirectorySource:
    """A directory file as read: where it is and what it holds."""

    path: str
    text: str

    @classmethod
    def read(cls, path: Path) -> DirectorySource:
        return cls(str(path.resolve()), path.read_text(encoding="utf-8"))


async def load_file_unless_changed(
    session: AsyncSession,
    file: DirectorySource,
    record: LoadRecord | None,
    *,
    replace_changes: bool,
    actor: str,
    now: datetime,
) -> LoadOutcome:
    """Load ``file`` unless the directory was changed since ``record`` was made (then keep it,
    unless ``replace_changes``). No record and a directory already there counts as changed,
    unless it already holds what the file holds."""
    directory = parse_directory(file.text)
    source, digest = file.path, hashlib.sha256(file.text.encode()).hexdigest()
    await lock_directory(session)
    current = await export_directory(session)
    action, since = LoadAction.LOADED, None
    if not (current.localities or current.practices or current.teams):
        pass
    elif record is not None and fingerprint(current) == record.fingerprint:
        if (record.source, record.source_sha256) == (source, digest):
            return LoadOutcome(LoadAction.UNCHANGED, record)
    elif record is None and same_entries(current, directory):
        return LoadOutcome(LoadAction.UNCHANGED, await _record(session, source, digest, now))
    else:
        since = await changes_since(session, record.last_change_id if record else 0)
        if not replace_changes:
            return LoadOutcome(LoadAction.KEPT, record, changed_since=since)
        action = LoadAction.REPLACED
    counts = await load_directory(session, directory, actor=actor, now=now)
    await session.flush()
    record = await _record(session, source, digest, now)
    return LoadOutcome(action, record, counts, since)


async def _record(session: AsyncSession, source: str, digest: str, now: datetime) -> LoadRecord:
    last_change = await session.scalar(select(func.max(DirectoryChange.id)))
    return LoadRecord(
        source=source,
        source_sha256=digest,
        fingerprint=fingerprint(await export_directory(session)),
        last_change_id=last_change or 0,
        loaded_at=now,
    )


async def changes_since(session: AsyncSession, change_id: int) -> ChangesSince:
    rows = (
        await session.execute(
            select(DirectoryChange.actor, DirectoryChange.at)
            .where(DirectoryChange.id > change_id)
            .order_by(DirectoryChange.id)
        )
    ).all()
    actors = sorted({actor for actor, _ in rows})
    return ChangesSince(len(rows), actors, rows[-1].at if rows else None)
