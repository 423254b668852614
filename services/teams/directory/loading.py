"""Loading a whole directory from YAML, all or nothing.

Loading is idempotent: localities, practices and teams are matched by their codes, updated in
place, and teams missing from the file are retired (never deleted: caseloads refer to them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.logging import current_request_id
from services.shared.problems import field_errors
from services.shared.vocabulary import UNASSIGNED_PATHWAYS, Pathway, TeamType
from services.teams.directory.entries import (
    DirectoryFile,
    LocalityEntry,
    OrganisationEntry,
    PracticeEntry,
    TeamEntry,
)
from services.teams.directory.models import (
    DirectoryChange,
    Locality,
    Organisation,
    Practice,
    Team,
    TeamPractice,
)
from services.teams.directory.problems import InvalidDirectory


def parse_directory(text: str) -> DirectoryFile:
    try:
        raw: Any = yaml.safe_load(text)
        if isinstance(raw, dict):
            # Top-level "x-" keys hold YAML anchors for reuse; they are not entries.
            raw = {key: value for key, value in raw.items() if not str(key).startswith("x-")}
        directory = DirectoryFile.model_validate(raw)
    except yaml.YAMLError as exc:
        raise InvalidDirectory(
            "The directory is not valid YAML.", errors=[_yaml_error(exc)]
        ) from None
    except ValidationError as exc:
        errors = field_errors(exc.errors(), document="directory")
        raise InvalidDirectory("The directory has invalid entries.", errors=errors) from None
    errors = check_directory(directory)
    if errors:
        raise InvalidDirectory("The directory is inconsistent.", errors=errors)
    return directory


def _yaml_error(exc: yaml.YAMLError) -> dict[str, str]:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or "not valid YAML"
    return {"in": "directory", "field": where, "reason": str(problem)}


class _Errors(list[dict[str, str]]):
    def add(self, field: str, reason: str) -> None:
        self.append({"in": "directory", "field": field, "reason": reason})


def check_directory(directory: DirectoryFile) -> list[dict[str, str]]:
    """References exist, codes are unique, no backup cycle, no practice covered twice by one type,
    time-critical pathways are pathways teams take."""
    errors = _Errors()
    localities = _unique([entry.code for entry in directory.localities], "localities", errors)
    practices = _unique([entry.ods_code for entry in directory.practices], "practices", errors)
    teams = _unique([entry.code for entry in directory.teams], "teams", errors)
    for i, locality in enumerate(directory.localities):
        if locality.operating_model == "custom" and not locality.pathway_team_types:
            errors.add(
                f"localities.{i}.pathway_team_types",
                "a custom model must map pathways to team types",
            )
    _check_time_critical(directory.localities, errors)
    for i, practice in enumerate(directory.practices):
        if practice.locality not in localities:
            errors.add(f"practices.{i}.locality", f"no active locality {practice.locality!r}")
    team_types = {entry.code: entry.type for entry in directory.teams}
    for i, locality in enumerate(directory.localities):
        if (
            locality.out_of_hours is not None
            and team_types.get(locality.out_of_hours) != TeamType.OUT_OF_HOURS
        ):
            errors.add(
                f"localities.{i}.out_of_hours",
                f"{locality.out_of_hours!r} is not an active out_of_hours team",
            )
    for i, team in enumerate(directory.teams):
        if team.locality is not None and team.locality not in localities:
            errors.add(f"teams.{i}.locality", f"no active locality {team.locality!r}")
        if team.backup is not None and team.backup not in teams:
            errors.add(f"teams.{i}.backup", f"no active team {team.backup!r}")
    _check_coverage(directory.teams, practices, errors)
    for code in _backup_cycles(directory.teams):
        errors.add("teams", f"the backup chain from {code} returns to itself")
    return list(errors)


def _check_time_critical(localities: list[LocalityEntry], errors: _Errors) -> None:
    """Each time-critical pathway is one that goes to a team, listed once."""
    for i, locality in enumerate(localities):
        listed: set[Pathway] = set()
        for j, pathway in enumerate(locality.time_critical_pathways):
            field = f"localities.{i}.time_critical_pathways.{j}"
            if pathway in UNASSIGNED_PATHWAYS:
                errors.add(field, f"{pathway} goes to no team, so it never waits for one")
            elif pathway in listed:
                errors.add(field, f"{pathway} is listed twice")
            listed.add(pathway)


def _check_coverage(teams: list[TeamEntry], practices: set[str], errors: _Errors) -> None:
    """Each covered practice exists, appears once per team, and once per team type."""
    covered: dict[tuple[str, TeamType], str] = {}
    for i, team in enumerate(teams):
        listed: set[str] = set()
        for j, cover in enumerate(team.practices):
            field = f"teams.{i}.practices.{j}"
            if cover.ods_code not in practices:
                errors.add(field, f"unknown practice {cover.ods_code}")
            if cover.ods_code in listed:
                errors.add(field, f"{cover.ods_code} is listed twice by {team.code}")
                continue
            listed.add(cover.ods_code)
            other = covered.setdefault((cover.ods_code, team.type), team.code)
            if other != team.code:
                errors.add(
                    field, f"{cover.ods_code} is already covered by {team.type} team {other}"
                )


def _unique(codes: list[str], field: str, errors: _Errors) -> set[str]:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            errors.add(field, f"{code} appears more than once")
        seen.add(code)
    return seen


def _backup_cycles(teams: list[TeamEntry]) -> list[str]:
    backup = {team.code: team.backup for team in teams}
    cyclic = []
    for start in backup:
        seen = {start}
        current = backup.get(start)
        while current is not None and current in backup:
            if current in seen:
                cyclic.append(start)
                break
            seen.add(current)
            current = backup[current]
    return cyclic


# Any fixed number: the key of the PostgreSQL advisory lock that serialises directory changes.
_DIRECTORY_LOCK_KEY = 0x7465616D73


async def lock_directory(session: AsyncSession) -> None:
    """Serialise directory changes until commit: each reads the whole directory and writes it
    back, so two at once would otherwise let the later undo the earlier. (SQLite has one writer.)"""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_DIRECTORY_LOCK_KEY)))


async def load_directory(
    session: AsyncSession, directory: DirectoryFile, actor: str, now: datetime
) -> dict[str, int]:
    """Make the database hold exactly ``directory`` and record each change as a new version.

    The caller commits once, so a load is all or nothing. Entries missing from ``directory`` are
    retired, never deleted: caseloads and history refer to them.
    """
    await lock_directory(session)
    before = await export_directory(session)
    organisation = await _apply_organisation(session, directory)
    localities = await _apply_localities(session, directory, organisation, now)
    practices = await _apply_practices(session, directory, localities, now)
    teams = await _apply_teams(session, directory, localities, practices, now)
    mark_published_changes(before, directory, teams, now)
    for entry in directory.localities:
        localities[entry.code].out_of_hours_team_id = (
            teams[entry.out_of_hours].id if entry.out_of_hours else None
        )
    await session.flush()
    changes = record_changes(session, before, directory, actor)
    return {
        "localities": len(directory.localities),
        "practices": len(directory.practices),
        "teams": len(directory.teams),
        "changes": changes,
    }


async def _apply_organisation(
    session: AsyncSession, directory: DirectoryFile
) -> Organisation | None:
    """The one organisation a directory names; any other is unlinked from localities and removed."""
    entry = directory.organisation
    organisation = None
    if entry is not None:
        organisation = await session.scalar(
            select(Organisation).where(Organisation.code == entry.code)
        )
        if organisation is None:
            organisation = Organisation(code=entry.code)
            session.add(organisation)
        organisation.name = entry.name
        await session.flush()
    others = select(Organisation.id)
    if organisation is not None:
        others = others.where(Organisation.id != organisation.id)
    await session.execute(
        update(Locality).where(Locality.organisation_id.in_(others)).values(organisation_id=None)
    )
    await session.execute(delete(Organisation).where(Organisation.id.in_(others)))
    return organisation


def _retire_missing(
    rows: Mapping[str, Locality | Practice | Team], listed: set[str], now: datetime
) -> None:
    """Entries missing from the new directory are retired, never deleted."""
    for code, row in rows.items():
        if code not in listed and row.retired_at is None:
            row.retired_at = now


async def _apply_localities(
    session: AsyncSession,
    directory: DirectoryFile,
    organisation: Organisation | None,
    now: datetime,
) -> dict[str, Locality]:
    localities = {row.code: row for row in await session.scalars(select(Locality))}
    _retire_missing(localities, {entry.code for entry in directory.localities}, now)
    for entry in directory.localities:
        locality = localities.get(entry.code) or Locality(code=entry.code)
        locality.organisation_id = organisation.id if organisation else None
        locality.name = entry.name
        locality.operating_model = entry.operating_model
        locality.pathway_team_types = (
            {str(k): str(v) for k, v in entry.pathway_team_types.items()}
            if entry.pathway_team_types
            else None
        )
        locality.postcode_districts = list(entry.postcode_districts)
        locality.time_critical_pathways = [str(pathway) for pathway in entry.time_critical_pathways]
        locality.retired_at = None
        localities[entry.code] = locality
        session.add(locality)
    await session.flush()
    return localities


async def _apply_practices(
    session: AsyncSession, directory: DirectoryFile, localities: dict[str, Locality], now: datetime
) -> dict[str, Practice]:
    practices = {row.ods_code: row for row in await session.scalars(select(Practice))}
    _retire_missing(practices, {entry.ods_code for entry in directory.practices}, now)
    for entry in directory.practices:
        practice = practices.get(entry.ods_code) or Practice(ods_code=entry.ods_code)
        practice.name = entry.name
        practice.postcode = entry.postcode
        practice.locality_id = localities[entry.locality].id
        practice.retired_at = None
        practices[entry.ods_code] = practice
        session.add(practice)
    await session.flush()
    return practices


async def _apply_teams(
    session: AsyncSession,
    directory: DirectoryFile,
    localities: dict[str, Locality],
    practices: dict[str, Practice],
    now: datetime,
) -> dict[str, Team]:
    await session.execute(delete(TeamPractice))
    teams = {
        row.code: row
        for row in await session.scalars(select(Team).execution_options(populate_existing=True))
    }
    _retire_missing(teams, {entry.code for entry in directory.teams}, now)
    for entry in directory.teams:
        team = teams.get(entry.code) or Team(code=entry.code)
        team.name = entry.name
        team.team_type = entry.type
        team.locality_id = localities[entry.locality].id if entry.locality else None
        team.disciplines = [str(discipline) for discipline in entry.disciplines]
        team.pathways = [str(pathway) for pathway in entry.pathways]
        team.hours = entry.hours.model_dump() if entry.hours else None
        team.endpoint_url = str(entry.endpoint_url) if entry.endpoint_url else None
        team.retired_at = None
        teams[entry.code] = team
        session.add(team)
    await session.flush()
    for entry in directory.teams:
        team = teams[entry.code]
        team.backup_team_id = teams[entry.backup].id if entry.backup else None
        for cover in entry.practices:
            session.add(
                TeamPractice(
                    team_id=team.id,
                    practice_id=practices[cover.ods_code].id,
                    linked_worker=cover.linked_worker,
                )
            )
    await session.flush()
    return teams


def mark_published_changes(
    before: DirectoryFile, after: DirectoryFile, teams: Mapping[str, Team], now: datetime
) -> None:
    """A team's published record (its Open Referral service) also shows its locality, the
    organisation and the practices it covers: a change to any of them changes the record,
    though not always the team's own row."""
    for code in _published_changes(before, after):
        teams[code].last_modified_at = now


def _published_changes(before: DirectoryFile, after: DirectoryFile) -> set[str]:
    """Codes of the teams in ``after`` whose published record differs from ``before``."""
    if before.organisation != after.organisation:
        return {entry.code for entry in after.teams}
    old_teams = {entry.code: entry for entry in before.teams}
    teams = _changed_entries(before.teams, after.teams, "code")
    localities = _changed_entries(before.localities, after.localities, "code")
    practices = _changed_entries(before.practices, after.practices, "ods_code")
    changed = set()
    for entry in after.teams:
        old = old_teams.get(entry.code)
        covered = {cover.ods_code for cover in [*entry.practices, *(old.practices if old else [])]}
        # A county-wide team serves the districts of every locality.
        served = {entry.locality} if entry.locality else localities
        if entry.code in teams or served & localities or covered & practices:
            changed.add(entry.code)
    return changed


def _changed_entries(before: list[Any], after: list[Any], key: str) -> set[str]:
    """Codes of the entries created, changed or removed between two lists."""
    old = {getattr(entry, key): entry.model_dump(mode="json") for entry in before}
    new = {getattr(entry, key): entry.model_dump(mode="json") for entry in after}
    return {code for code in old.keys() | new.keys() if old.get(code) != new.get(code)}


async def export_directory(session: AsyncSession) -> DirectoryFile:
    """The active directory as the entries a directory file would hold."""
    organisation = await session.scalar(select(Organisation).order_by(Organisation.code).limit(1))
    localities = list(
        await session.scalars(
            select(Locality).where(Locality.retired_at.is_(None)).order_by(Locality.code)
        )
    )
    practices = list(
        await session.scalars(
            select(Practice).where(Practice.retired_at.is_(None)).order_by(Practice.ods_code)
        )
    )
    teams = list(
        await session.scalars(
            select(Team)
            .where(Team.retired_at.is_(None))
            .order_by(Team.code)
            .execution_options(populate_existing=True)
        )
    )
    locality_codes = {row.id: row.code for row in localities}
    team_codes = {row.id: row.code for row in teams}
    return DirectoryFile(
        organisation=OrganisationEntry(code=organisation.code, name=organisation.name)
        if organisation
        else None,
        localities=[_locality_entry(row, team_codes) for row in localities],
        practices=[
            PracticeEntry(
                ods_code=row.ods_code,
                name=row.name,
                postcode=row.postcode,
                locality=locality_codes[row.locality_id],
            )
            for row in practices
            if row.locality_id in locality_codes
        ],
        teams=[_team_entry(row, locality_codes, team_codes) for row in teams],
    )


def _locality_entry(row: Locality, team_codes: dict[uuid.UUID, str]) -> LocalityEntry:
    return LocalityEntry.model_validate(
        {
            "code": row.code,
            "name": row.name,
            "operating_model": row.operating_model,
            "pathway_team_types": row.pathway_team_types,
            "postcode_districts": row.postcode_districts,
            "out_of_hours": team_codes.get(row.out_of_hours_team_id)
            if row.out_of_hours_team_id
            else None,
            "time_critical_pathways": row.time_critical_pathways,
        }
    )


def _team_entry(
    row: Team, locality_codes: dict[uuid.UUID, str], team_codes: dict[uuid.UUID, str]
) -> TeamEntry:
    return TeamEntry.model_validate(
        {
            "code": row.code,
            "name": row.name,
            "type": row.team_type,
            "locality": locality_codes.get(row.locality_id) if row.locality_id else None,
            "backup": team_codes.get(row.backup_team_id) if row.backup_team_id else None,
            "practices": [
                {"ods_code": cover.practice.ods_code, "linked_worker": cover.linked_worker}
                for cover in sorted(row.coverage, key=lambda cover: cover.practice.ods_code)
            ],
            "disciplines": row.disciplines,
            "pathways": row.pathways,
            "hours": row.hours,
            "endpoint_url": row.endpoint_url,
        }
    )


def record_changes(
    session: AsyncSession, before: DirectoryFile, after: DirectoryFile, actor: str
) -> int:
    """Add a DirectoryChange for every entry created, changed or retired between two versions."""
    count = 0
    for entity_type, old, new in _entries_by_code(before, after):
        for code in sorted(old.keys() | new.keys()):
            was, now = old.get(code), new.get(code)
            if was == now:
                continue
            action = "created" if was is None else "retired" if now is None else "updated"
            session.add(
                DirectoryChange(
                    actor=actor,
                    request_id=current_request_id(),
                    action=action,
                    entity_type=entity_type,
                    entity_code=code,
                    before=was,
                    after=now,
                )
            )
            count += 1
    return count


def same_entries(one: DirectoryFile, other: DirectoryFile) -> bool:
    """Whether loading ``other`` over ``one`` would change nothing (entries compared by code)."""
    return all(old == new for _, old, new in _entries_by_code(one, other))


def _entries_by_code(
    before: DirectoryFile, after: DirectoryFile
) -> list[tuple[str, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]]:
    def by_code(entries: list[Any], key: str) -> dict[str, dict[str, Any]]:
        return {getattr(entry, key): entry.model_dump(mode="json") for entry in entries}

    def organisation(directory: DirectoryFile) -> dict[str, dict[str, Any]]:
        entry = directory.organisation
        return {entry.code: entry.model_dump(mode="json")} if entry else {}

    return [
        ("organisation", organisation(before), organisation(after)),
        ("locality", by_code(before.localities, "code"), by_code(after.localities, "code")),
        ("practice", by_code(before.practices, "ods_code"), by_code(after.practices, "ods_code")),
        ("team", by_code(before.teams, "code"), by_code(after.teams, "code")),
    ]


# The fictional demo county, shipped with the package for `load-directory --demo`.
DEMO_DIRECTORY = Path(__file__).resolve().parents[1] / "demo_directory.yaml"


def read_directory_file(path: Path) -> DirectoryFile:
    return parse_directory(path.read_text(encoding="utf-8"))
