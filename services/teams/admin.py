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
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.identifiers import OdsCode
from services.shared.problems import problem_responses
from services.teams.directory import (
    check_directory,
    export_directory,
    load_directory,
    lock_directory,
)
from services.teams.entries import DirectoryFile, LocalityEntry, PracticeEntry, TeamEntry
from services.teams.models import DirectoryChange
from services.teams.problems import (
    EntryCodeMismatch,
    EntryExists,
    EntryNotFound,
    InvalidDirectory,
)

router = APIRouter(prefix="/v1/directory", tags=["directory admin"])

EntityType = Literal["organisation", "locality", "practice", "team"]
Admin = Annotated[Principal, requires("directory:admin")]


@dataclass(frozen=True, slots=True)
class Editor:
    """Who changes the directory, and when (the service's clock)."""

    actor: str
    now: datetime


async def _editor(principal: Admin, now: NowDep) -> Editor:
    return Editor(principal.client_id, now)


EditorDep = Annotated[Editor, Depends(_editor)]
Reader = Annotated[Principal, requires("directory:read")]
CodePath = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Entry code"),
]
OdsCodePath = Annotated[OdsCode, Path(description="Practice ODS code")]


class DirectoryLoadRead(BaseModel):
    localities: int
    practices: int
    teams: int
    changes: int = Field(description="Entries created, updated or retired by this load")


class DirectoryChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="The client (or operator) that made the change")
    action: Literal["created", "updated", "retired"]
    entity_type: EntityType
    entity_code: str
    before: dict[str, Any] | None = Field(description="The entry before; null when created")
    after: dict[str, Any] | None = Field(description="The entry after; null when retired")


class DirectoryChangePage(BaseModel):
    items: list[DirectoryChangeRead] = Field(description="Newest first")
    next_before_id: int | None = Field(
        description="Pass as before_id for the next page; null on the last page"
    )


# --- Use cases: each reads, changes and loads the whole directory ------------------------------

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


# --- The whole directory and its history -------------------------------------------------------

_CREATED = status.HTTP_201_CREATED
_CREATE_PROBLEMS = problem_responses(EntryExists, InvalidDirectory)
_REPLACE_PROBLEMS = problem_responses(EntryNotFound, EntryCodeMismatch, InvalidDirectory)
_RETIRE_PROBLEMS = problem_responses(EntryNotFound, InvalidDirectory)


@router.get("", summary="The whole active directory, as a directory file")
async def get_directory(session: SessionDep, _: Reader) -> DirectoryFile:
    return await export_directory(session)


@router.put(
    "",
    summary="Replace the whole directory, all or nothing",
    responses=problem_responses(InvalidDirectory),
)
async def put_directory(
    body: DirectoryFile, session: SessionDep, editor: EditorDep
) -> DirectoryLoadRead:
    counts = await replace_directory(session, body, editor)
    return DirectoryLoadRead.model_validate(counts)


@router.get("/changes", summary="The directory's version history, newest first")
async def get_changes(
    session: SessionDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Changes older than this id")
    ] = None,
    entity_type: EntityType | None = None,
    entity_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> DirectoryChangePage:
    rows = await list_changes(
        session,
        limit=limit + 1,
        before_id=before_id,
        entity_type=entity_type,
        entity_code=entity_code,
    )
    items = [DirectoryChangeRead.model_validate(row) for row in rows[:limit]]
    return DirectoryChangePage(
        items=items, next_before_id=items[-1].id if len(rows) > limit else None
    )


# --- Localities --------------------------------------------------------------------------------


@router.post(
    "/localities", status_code=_CREATED, summary="Add a locality", responses=_CREATE_PROBLEMS
)
async def create_locality(
    body: LocalityEntry, session: SessionDep, editor: EditorDep
) -> LocalityEntry:
    return await create_entry(session, LOCALITIES, body, editor)


@router.put("/localities/{code}", summary="Replace a locality", responses=_REPLACE_PROBLEMS)
async def replace_locality(
    code: CodePath, body: LocalityEntry, session: SessionDep, editor: EditorDep
) -> LocalityEntry:
    return await replace_entry(session, LOCALITIES, code, body, editor)


@router.post(
    "/localities/{code}/retire",
    summary="Retire a locality that no practice or team refers to",
    responses=_RETIRE_PROBLEMS,
)
async def retire_locality(code: CodePath, session: SessionDep, editor: EditorDep) -> LocalityEntry:
    return await retire_entry(session, LOCALITIES, code, editor)


# --- Practices ---------------------------------------------------------------------------------


@router.post(
    "/practices", status_code=_CREATED, summary="Add a practice", responses=_CREATE_PROBLEMS
)
async def create_practice(
    body: PracticeEntry, session: SessionDep, editor: EditorDep
) -> PracticeEntry:
    return await create_entry(session, PRACTICES, body, editor)


@router.put("/practices/{ods_code}", summary="Replace a practice", responses=_REPLACE_PROBLEMS)
async def replace_practice(
    ods_code: OdsCodePath, body: PracticeEntry, session: SessionDep, editor: EditorDep
) -> PracticeEntry:
    return await replace_entry(session, PRACTICES, ods_code, body, editor)


@router.post(
    "/practices/{ods_code}/retire",
    summary="Retire a practice that no team covers",
    responses=_RETIRE_PROBLEMS,
)
async def retire_practice(
    ods_code: OdsCodePath, session: SessionDep, editor: EditorDep
) -> PracticeEntry:
    return await retire_entry(session, PRACTICES, ods_code, editor)


# --- Teams -------------------------------------------------------------------------------------


@router.post("/teams", status_code=_CREATED, summary="Add a team", responses=_CREATE_PROBLEMS)
async def create_team(body: TeamEntry, session: SessionDep, editor: EditorDep) -> TeamEntry:
    return await create_entry(session, TEAMS, body, editor)


@router.put("/teams/{code}", summary="Replace a team", responses=_REPLACE_PROBLEMS)
async def replace_team(
    code: CodePath, body: TeamEntry, session: SessionDep, editor: EditorDep
) -> TeamEntry:
    return await replace_entry(session, TEAMS, code, body, editor)


@router.post(
    "/teams/{code}/retire",
    summary="Retire a team that is no other team's backup nor a locality's out-of-hours service",
    responses=_RETIRE_PROBLEMS,
)
async def retire_team(code: CodePath, session: SessionDep, editor: EditorDep) -> TeamEntry:
    return await retire_entry(session, TEAMS, code, editor)
