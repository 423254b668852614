"""HTTP API of directory management: the whole directory, its history, and each entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from services.shared import pagination
from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.identifiers import OdsCode
from services.shared.pagination import CursorQuery, Limit
from services.shared.problems import problem_responses
from services.teams.directory.admin import (
    LOCALITIES,
    PRACTICES,
    TEAMS,
    Editor,
    create_entry,
    list_changes,
    replace_directory,
    replace_entry,
    retire_entry,
)
from services.teams.directory.entries import DirectoryFile, LocalityEntry, PracticeEntry, TeamEntry
from services.teams.directory.loading import export_directory
from services.teams.directory.problems import (
    EntryCodeMismatch,
    EntryExists,
    EntryNotFound,
    InvalidDirectory,
)
from services.teams.directory.schemas import (
    DirectoryChangePage,
    DirectoryChangeRead,
    DirectoryLoadRead,
    EntityType,
)

router = APIRouter(prefix="/v1/directory", tags=["directory admin"])

Admin = Annotated[Principal, requires("directory:admin")]


async def _editor(principal: Admin, now: NowDep) -> Editor:
    return Editor(principal.client_id, now)


EditorDep = Annotated[Editor, Depends(_editor)]
Reader = Annotated[Principal, requires("directory:read")]
CodePath = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Entry code"),
]
OdsCodePath = Annotated[OdsCode, Path(description="Practice ODS code")]


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


CHANGES = "directory-changes"


@router.get(
    "/changes",
    summary="The directory's version history, newest first",
    responses=problem_responses(pagination.InvalidCursor),
)
async def get_changes(
    session: SessionDep,
    _: Reader,
    cursor: CursorQuery = None,
    limit: Limit = 50,
    entity_type: EntityType | None = None,
    entity_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> DirectoryChangePage:
    start = pagination.decode(cursor, CHANGES, (int,))
    rows = await list_changes(
        session,
        limit=limit + 1,
        before_id=start[0] if start else None,
        entity_type=entity_type,
        entity_code=entity_code,
    )
    found, next_cursor = pagination.page_of(rows, limit, CHANGES, lambda row: (row.id,))
    return DirectoryChangePage(
        items=[DirectoryChangeRead.model_validate(row) for row in found], next_cursor=next_cursor
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
