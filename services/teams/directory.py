"""Loading a whole directory from YAML, all or nothing.

Loading is idempotent: localities, practices and teams are matched by their codes, updated in
place, and teams missing from the file are retired (never deleted: caseloads refer to them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.identifiers import OdsCode, Postcode
from services.shared.problems import field_errors
from services.shared.vocabulary import Pathway, TeamType
from services.teams.models import Locality, Practice, Team, TeamPractice
from services.teams.problems import InvalidDirectory

Code = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")


class LocalityEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    operating_model: Literal["A", "B", "custom"]
    pathway_team_types: dict[Pathway, TeamType] | None = None
    postcode_districts: list[str] = Field(default_factory=list)


class PracticeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ods_code: OdsCode
    name: str = Field(min_length=1, max_length=200)
    postcode: Postcode
    locality: str


class CoverageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ods_code: OdsCode
    linked_worker: str | None = Field(default=None, max_length=200)


class TeamEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    type: TeamType
    locality: str | None = None
    backup: str | None = None
    practices: list[CoverageEntry] = Field(default_factory=list)


class DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    localities: list[LocalityEntry]
    practices: list[PracticeEntry]
    teams: list[TeamEntry]


def parse_directory(text: str) -> DirectoryFile:
    try:
        raw: Any = yaml.safe_load(text)
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
    """References exist, codes are unique, no backup cycle, no practice covered twice by one type."""
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
    for i, practice in enumerate(directory.practices):
        if practice.locality not in localities:
            errors.add(f"practices.{i}.locality", f"unknown locality {practice.locality!r}")
    for i, team in enumerate(directory.teams):
        if team.locality is not None and team.locality not in localities:
            errors.add(f"teams.{i}.locality", f"unknown locality {team.locality!r}")
        if team.backup is not None and team.backup not in teams:
            errors.add(f"teams.{i}.backup", f"unknown team {team.backup!r}")
    _check_coverage(directory.teams, practices, errors)
    for code in _backup_cycles(directory.teams):
        errors.add("teams", f"the backup chain from {code} returns to itself")
    return list(errors)


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


async def load_directory(session: AsyncSession, directory: DirectoryFile) -> dict[str, int]:
    """Make the database hold exactly ``directory``. The caller commits once, so it is atomic."""
    localities = {row.code: row for row in await session.scalars(select(Locality))}
    for entry in directory.localities:
        locality = localities.get(entry.code) or Locality(code=entry.code)
        locality.name = entry.name
        locality.operating_model = entry.operating_model
        locality.pathway_team_types = (
            {str(k): str(v) for k, v in entry.pathway_team_types.items()}
            if entry.pathway_team_types
            else None
        )
        locality.postcode_districts = [district.upper() for district in entry.postcode_districts]
        localities[entry.code] = locality
        session.add(locality)
    await session.flush()

    practices = {row.ods_code: row for row in await session.scalars(select(Practice))}
    for p_entry in directory.practices:
        practice = practices.get(p_entry.ods_code) or Practice(ods_code=p_entry.ods_code)
        practice.name = p_entry.name
        practice.postcode = p_entry.postcode
        practice.locality_id = localities[p_entry.locality].id
        practices[p_entry.ods_code] = practice
        session.add(practice)
    await session.flush()

    await session.execute(delete(TeamPractice))
    teams = {row.code: row for row in await session.scalars(select(Team))}
    for t_entry in directory.teams:
        team = teams.get(t_entry.code) or Team(code=t_entry.code)
        team.name = t_entry.name
        team.team_type = t_entry.type
        team.locality_id = localities[t_entry.locality].id if t_entry.locality else None
        team.retired_at = None
        teams[t_entry.code] = team
        session.add(team)
    await session.flush()
    await _link_teams(session, directory, teams, practices)
    return {
        "localities": len(directory.localities),
        "practices": len(directory.practices),
        "teams": len(directory.teams),
    }


async def _link_teams(
    session: AsyncSession,
    directory: DirectoryFile,
    teams: dict[str, Team],
    practices: dict[str, Practice],
) -> None:
    listed = {entry.code for entry in directory.teams}
    for code, team in teams.items():
        if code not in listed and team.retired_at is None:
            team.retired_at = datetime.now(UTC)
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


def read_directory_file(path: Path) -> DirectoryFile:
    return parse_directory(path.read_text(encoding="utf-8"))
