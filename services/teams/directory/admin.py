"""Directory management: create, update and retire entries, with every change versioned.

Every change takes the path of a whole-directory load, so the rules live in one place: export the
active directory, apply the change to it, check the result with ``check_directory`` and load it
with ``load_directory``, which records who changed what, when, before and after. The request edge
commits, so a refused change changes nothing.

The errors of a refused change name fields of the directory as it would have been: entries in
the order ``GET /v1/directory`` lists them, less a retired entry, with a new entry last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.teams.directory.entries import DirectoryFile, LocalityEntry, PracticeEntry, TeamEntry
from services.teams.directory.loading import (
    check_directory,
    export_directory,
    load_directory,
    lock_directory,
)
from services.teams.directory.models import DirectoryChange
from services.teams.directory.problems import (
    EntryCodeMismatch,
    EntryExists,
    EntryNotFound,
    InvalidDirectory,
)
from services.teams.directory.schemas import EntityType


@dataclass(frozen=True, slots=True)
class Editor:
    """Who changes the directory, and when (the service's clock)."""

    actor: str
    now: datetime


E = TypeVar("E", LocalityEntry, PracticeEntry, TeamEntry)


@dataclass(frozen=True)
class Section(Generic[E]):
    """One list of a directory file: the entity type it holds, its name, and its entries' key."""

    entity_type: EntityType
    name: str
    key: str

    def entries(self, directory: DirectoryFile) -> list[E]:
        entries: list[E] = list(getattr(directory, self.name))
        return entries

    def code_of(self, entry: E) -> str:
        return str(getattr(entry, self.key))

    def index(self, directory: DirectoryFile, code: str) -> int:
        for i, entry in enumerate(self.entries(directory)):
            if self.code_of(entry) == code:
                return i
        raise EntryNotFound(f"The directory has no active {self.entity_type} {code}.")

    def replaced(self, directory: DirectoryFile, entries: list[E]) -> DirectoryFile:
        return directory.model_copy(update={self.name: entries})


LOCALITIES = Section[LocalityEntry]("locality", "localities", "code")
PRACTICES = Section[PracticeEntry]("practice", "practices", "ods_code")
TEAMS = Section[TeamEntry]("team", "teams", "code")


async def create_entry(session: AsyncSession, section: Section[E], entry: E, editor: Editor) -> E:
    """Add an entry; a code that was retired comes back to life with its history."""
    directory = await _locked_export(session)
    code = section.code_of(entry)
    entries = section.entries(directory)
    if any(section.code_of(existing) == code for existing in entries):
        raise EntryExists(f"The directory already has an active {section.entity_type} {code}.")
    entries.append(entry)
    changed = section.replaced(directory, entries)
    await _load_checked(session, changed, editor, f"Adding {section.entity_type} {code}")
    return await _stored(session, section, code)


async def replace_entry(
    session: AsyncSession, section: Section[E], code: str, entry: E, editor: Editor
) -> E:
    if section.code_of(entry) != code:
        raise EntryCodeMismatch(
            f"The body's {section.key} must be {code}, the code in the path.",
            errors=[{"in": "body", "field": section.key, "reason": "differs from the path"}],
        )
    directory = await _locked_export(session)
    entries = section.entries(directory)
    entries[section.index(directory, code)] = entry
    changed = section.replaced(directory, entries)
    await _load_checked(session, changed, editor, f"Changing {section.entity_type} {code}")
    return await _stored(session, section, code)


async def retire_entry(session: AsyncSession, section: Section[E], code: str, editor: Editor) -> E:
    """Remove an entry from the directory; the load retires it. Returns its last version."""
    directory = await _locked_export(session)
    entries = section.entries(directory)
    retired = entries.pop(section.index(directory, code))
    changed = section.replaced(directory, entries)
    await _load_checked(session, changed, editor, f"Retiring {section.entity_type} {code}")
    return retired


async def replace_directory(
    session: AsyncSession, directory: DirectoryFile, editor: Editor
) -> dict[str, int]:
    return await _load_checked(session, directory, editor, "The directory given")


async def _locked_export(session: AsyncSession) -> DirectoryFile:
    await lock_directory(session)
    return await export_directory(session)


async def _load_checked(
    session: AsyncSession, directory: DirectoryFile, editor: Editor, what: str
) -> dict[str, int]:
    errors = check_directory(directory)
    if errors:
        raise InvalidDirectory(
            f"{what} would leave the directory inconsistent; nothing was changed.",
            errors=errors,
        )
    return await load_directory(session, directory, actor=editor.actor, now=editor.now)


async def _stored(session: AsyncSession, section: Section[E], code: str) -> E:
    directory = await export_directory(session)
    return section.entries(directory)[section.index(directory, code)]


async def list_changes(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None,
    entity_type: EntityType | None,
    entity_code: str | None,
) -> list[DirectoryChange]:
    query = select(DirectoryChange).order_by(DirectoryChange.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(DirectoryChange.id < before_id)
    if entity_type is not None:
        query = query.where(DirectoryChange.entity_type == entity_type)
    if entity_code is not None:
        query = query.where(DirectoryChange.entity_code == entity_code)
    return list(await session.scalars(query))
