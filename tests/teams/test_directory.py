"""The directory file: validation (pure) and loading (on PostgreSQL), all or nothing."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.db import create_engine, create_sessionmaker
from services.shared.vocabulary import TeamType
from services.teams.directory.entries import DirectoryFile
from services.teams.directory.loading import (
    DEMO_DIRECTORY,
    check_directory,
    load_directory,
    parse_directory,
)
from services.teams.directory.models import Locality, Practice, Team, TeamPractice
from services.teams.directory.problems import InvalidDirectory
from tests.databases import empty_tables
from tests.stack import MORNING, SettableClock

DEMO_TEXT = DEMO_DIRECTORY.read_text(encoding="utf-8")


def demo_data() -> dict[str, Any]:
    """A fresh, mutable copy of the demo directory as plain data."""
    data: dict[str, Any] = yaml.safe_load(DEMO_TEXT)
    # Without the "x-" anchor blocks: their content is already merged into the entries.
    return copy.deepcopy({key: value for key, value in data.items() if not key.startswith("x-")})


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def index_of(entries: list[dict[str, Any]], key: str, value: str) -> int:
    return next(i for i, entry in enumerate(entries) if entry[key] == value)


def team_index(data: dict[str, Any], code: str) -> int:
    return index_of(data["teams"], "code", code)


def errors_of(text: str) -> list[dict[str, str]]:
    with pytest.raises(InvalidDirectory) as info:
        parse_directory(text)
    errors: list[dict[str, str]] = info.value.extensions.get("errors", [])
    assert errors, "an invalid directory must say what is wrong"
    return errors


def assert_names(errors: list[dict[str, str]], field: str, reason_fragment: str) -> None:
    assert any(
        error["field"] == field and reason_fragment in error["reason"] for error in errors
    ), f"no error on {field!r} mentioning {reason_fragment!r} in {errors}"


def two_team_directory(*, backup_a: str | None, backup_b: str | None) -> str:
    """A minimal directory with teams a and b, whose backups are given."""
    data: dict[str, Any] = {
        "localities": [{"code": "north", "name": "North", "operating_model": "A"}],
        "practices": [
            {"ods_code": "M91001", "name": "Surgery", "postcode": "XW1 2AB", "locality": "north"}
        ],
        "teams": [
            {"code": "a", "name": "Team A", "type": "locality_integrated", "locality": "north"},
            {"code": "b", "name": "Team B", "type": "out_of_hours"},
        ],
    }
    data["teams"][0]["backup"] = backup_a
    data["teams"][1]["backup"] = backup_b
    return dump(data)


# --- The demo directory ----------------------------------------------------------------------


def test_demo_directory_parses_and_describes_a_county_with_both_models() -> None:
    directory = parse_directory(DEMO_TEXT)

    assert check_directory(directory) == []
    assert len(directory.localities) >= 3
    assert any(locality.operating_model == "B" for locality in directory.localities)
    assert any(locality.operating_model == "A" for locality in directory.localities)
    assert len(directory.practices) >= 12
    plmdts = [team for team in directory.teams if team.type == TeamType.PLMDT]
    assert plmdts
    for team in plmdts:
        assert 1 <= len(team.practices) <= 3, f"{team.code} covers {len(team.practices)}"


def test_every_demo_practice_has_exactly_one_practice_linked_team_of_its_model() -> None:
    directory = parse_directory(DEMO_TEXT)
    models = {locality.code: locality.operating_model for locality in directory.localities}
    covering: dict[str, list[tuple[str, TeamType, str | None]]] = {}
    for team in directory.teams:
        for cover in team.practices:
            covering.setdefault(cover.ods_code, []).append(
                (team.code, team.type, cover.linked_worker)
            )

    for practice in directory.practices:
        teams = covering.get(practice.ods_code, [])
        assert len(teams) == 1, f"{practice.ods_code} is covered by {teams}"
        _, team_type, linked_worker = teams[0]
        if models[practice.locality] == "A":
            assert team_type == TeamType.PLMDT
        else:
            assert team_type == TeamType.INTEGRATED
            assert linked_worker, f"{practice.ods_code} has no linked worker in a Model B team"


def test_a_custom_operating_model_with_its_own_mapping_is_accepted() -> None:
    data = demo_data()
    data["localities"][0]["operating_model"] = "custom"
    data["localities"][0]["pathway_team_types"] = {
        "rapid_response": "locality_integrated",
        "case_management": "plmdt",
    }

    directory = parse_directory(dump(data))

    assert directory.localities[0].pathway_team_types == {
        "rapid_response": TeamType.LOCALITY_INTEGRATED,
        "case_management": TeamType.PLMDT,
    }


def test_only_crisis_work_goes_out_of_hours_unless_a_locality_says_otherwise() -> None:
    data = demo_data()
    south = index_of(data["localities"], "code", "south")
    data["localities"][south]["time_critical_pathways"] = ["rapid_response", "reablement"]

    directory = parse_directory(dump(data))

    pathways = {entry.code: entry.time_critical_pathways for entry in directory.localities}
    assert pathways["east"] == ["rapid_response"]
    assert pathways["south"] == ["rapid_response", "reablement"]


def test_ods_codes_and_postcodes_are_normalised() -> None:
    data = demo_data()
    data["practices"][0]["ods_code"] = " m91001 "
    data["practices"][0]["postcode"] = "xw12ab"

    directory = parse_directory(dump(data))

    assert directory.practices[0].ods_code == "M91001"
    assert directory.practices[0].postcode == "XW1 2AB"


# --- Inconsistent directories ----------------------------------------------------------------


def _practice_in_unknown_locality(data: dict[str, Any]) -> tuple[str, str]:
    i = index_of(data["practices"], "ods_code", "M91003")
    data["practices"][i]["locality"] = "west"
    return f"practices.{i}.locality", "no active locality 'west'"


def _team_in_unknown_locality(data: dict[str, Any]) -> tuple[str, str]:
    i = team_index(data, "lit-south")
    data["teams"][i]["locality"] = "west"
    return f"teams.{i}.locality", "no active locality 'west'"


def _unknown_backup(data: dict[str, Any]) -> tuple[str, str]:
    i = team_index(data, "plmdt-north-2")
    data["teams"][i]["backup"] = "lit-nowhere"
    return f"teams.{i}.backup", "no active team 'lit-nowhere'"


def _practice_covered_twice(data: dict[str, Any]) -> tuple[str, str]:
    i = team_index(data, "plmdt-north-2")
    data["teams"][i]["practices"].append({"ods_code": "M91001"})
    j = len(data["teams"][i]["practices"]) - 1
    return f"teams.{i}.practices.{j}", "M91001 is already covered by plmdt team plmdt-north-1"


def _unknown_practice_covered(data: dict[str, Any]) -> tuple[str, str]:
    i = team_index(data, "plmdt-south-1")
    data["teams"][i]["practices"].append({"ods_code": "Z99998"})
    j = len(data["teams"][i]["practices"]) - 1
    return f"teams.{i}.practices.{j}", "unknown practice Z99998"


def _custom_model_without_mapping(data: dict[str, Any]) -> tuple[str, str]:
    i = index_of(data["localities"], "code", "south")
    data["localities"][i]["operating_model"] = "custom"
    return f"localities.{i}.pathway_team_types", "custom model must map pathways"


def _duplicate_team_code(data: dict[str, Any]) -> tuple[str, str]:
    data["teams"].append({"code": "cru-county", "name": "Second CRU", "type": "cru"})
    return "teams", "cru-county appears more than once"


def _duplicate_practice(data: dict[str, Any]) -> tuple[str, str]:
    data["practices"].append(
        {"ods_code": "M92001", "name": "Again", "postcode": "XW4 1LM", "locality": "east"}
    )
    return "practices", "M92001 appears more than once"


def _advice_as_time_critical(data: dict[str, Any]) -> tuple[str, str]:
    i = index_of(data["localities"], "code", "east")
    data["localities"][i]["time_critical_pathways"] = ["rapid_response", "advice"]
    return f"localities.{i}.time_critical_pathways.1", "advice goes to no team"


def _time_critical_pathway_twice(data: dict[str, Any]) -> tuple[str, str]:
    i = index_of(data["localities"], "code", "north")
    data["localities"][i]["time_critical_pathways"] = ["reablement", "reablement"]
    return f"localities.{i}.time_critical_pathways.1", "reablement is listed twice"


@pytest.mark.parametrize(
    "mutate",
    [
        _advice_as_time_critical,
        _time_critical_pathway_twice,
        _practice_in_unknown_locality,
        _team_in_unknown_locality,
        _unknown_backup,
        _practice_covered_twice,
        _unknown_practice_covered,
        _custom_model_without_mapping,
        _duplicate_team_code,
        _duplicate_practice,
    ],
)
def test_an_inconsistent_directory_is_refused_naming_the_offending_entry(
    mutate: Callable[[dict[str, Any]], tuple[str, str]],
) -> None:
    data = demo_data()
    field, reason = mutate(data)

    with pytest.raises(InvalidDirectory) as info:
        parse_directory(dump(data))

    assert info.value.status == 422
    assert info.value.type.endswith("invalid-directory")
    errors = info.value.extensions["errors"]
    assert_names(errors, field, reason)
    assert len(errors) == 1, errors


def test_a_backup_cycle_is_refused_for_every_team_on_it() -> None:
    errors = errors_of(two_team_directory(backup_a="b", backup_b="a"))

    assert_names(errors, "teams", "the backup chain from a returns to itself")
    assert_names(errors, "teams", "the backup chain from b returns to itself")


def test_a_team_that_is_its_own_backup_is_a_cycle() -> None:
    errors = errors_of(two_team_directory(backup_a="a", backup_b=None))

    assert_names(errors, "teams", "the backup chain from a returns to itself")


def test_a_backup_chain_that_ends_is_not_a_cycle() -> None:
    directory = parse_directory(two_team_directory(backup_a="b", backup_b=None))

    assert [team.backup for team in directory.teams] == ["b", None]


def test_every_problem_is_reported_at_once() -> None:
    data = demo_data()
    expected = [
        _practice_in_unknown_locality(data),
        _unknown_backup(data),
        _unknown_practice_covered(data),
    ]

    errors = errors_of(dump(data))

    for field, reason in expected:
        assert_names(errors, field, reason)
    assert len(errors) == len(expected)


# --- Malformed directories (schema errors) ---------------------------------------------------


def test_an_invalid_ods_code_is_refused() -> None:
    data = demo_data()
    data["practices"][4]["ods_code"] = "M9-1005!"

    errors = errors_of(dump(data))

    assert len(errors) == 1, errors
    assert errors[0]["field"].endswith("4.ods_code")
    assert "ODS code" in errors[0]["reason"]


def test_an_unknown_key_on_a_team_is_refused() -> None:
    data = demo_data()
    i = team_index(data, "lit-north")
    data["teams"][i]["colour"] = "red"

    errors = errors_of(dump(data))

    assert len(errors) == 1, errors
    assert errors[0]["field"].endswith(f"{i}.colour")
    assert "not permitted" in errors[0]["reason"]


def test_an_unknown_key_on_a_practice_is_refused() -> None:
    data = demo_data()
    data["practices"][2]["list_size"] = 9000

    errors = errors_of(dump(data))

    assert len(errors) == 1, errors
    assert errors[0]["field"].endswith("2.list_size")
    assert "not permitted" in errors[0]["reason"]


def test_an_unknown_top_level_key_is_refused() -> None:
    data = demo_data()
    data["version"] = 2

    errors = errors_of(dump(data))

    assert len(errors) == 1, errors
    assert "not permitted" in errors[0]["reason"]


def test_an_unknown_team_type_is_refused() -> None:
    data = demo_data()
    i = team_index(data, "equipment-county")
    data["teams"][i]["type"] = "wheelchair_service"

    errors = errors_of(dump(data))

    assert len(errors) == 1, errors
    assert errors[0]["field"].endswith(f"{i}.type")
    assert "plmdt" in errors[0]["reason"]


@pytest.mark.parametrize("text", ["", "just some words", "- a\n- list\n"])
def test_yaml_that_is_not_a_directory_is_refused(text: str) -> None:
    errors_of(text)


def test_invalid_yaml_is_refused() -> None:
    with pytest.raises(InvalidDirectory) as info:
        parse_directory("localities: [\n  - {code: north, name: North\n")

    assert info.value.status == 422
    assert info.value.detail is not None
    assert "YAML" in info.value.detail


@pytest.mark.parametrize(
    ("key", "index", "value", "field"),
    [
        ("ods_code", 4, "M9-1005!", "practices.4.ods_code"),
        ("colour", 0, "red", "teams.0.colour"),
    ],
)
def test_schema_errors_name_the_full_path_like_consistency_errors(
    key: str, index: int, value: str, field: str
) -> None:
    data = demo_data()
    section = field.split(".", 1)[0]
    data[section][index][key] = value

    errors = errors_of(dump(data))

    assert errors == [{"in": "directory", "field": field, "reason": errors[0]["reason"]}]


def test_an_unknown_top_level_key_is_named_in_field() -> None:
    data = demo_data()
    data["version"] = 2

    errors = errors_of(dump(data))

    assert errors[0]["field"] == "version"


def test_invalid_yaml_says_where() -> None:
    errors = errors_of("localities: [\n  - {code: north, name: North\n")

    assert len(errors) == 1
    assert errors[0]["field"] == "line 2, column 3"


def test_a_team_listing_a_practice_twice_is_refused() -> None:
    data = demo_data()
    i = team_index(data, "plmdt-north-1")
    data["teams"][i]["practices"].append({"ods_code": "M91001"})

    errors = errors_of(dump(data))

    assert any(error["field"].startswith(f"teams.{i}.practices") for error in errors)


# --- Loading into the database ---------------------------------------------------------------

Snapshot = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
async def sessions(
    postgres_urls: dict[str, str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = postgres_urls["teams"]
    await empty_tables(url, "teams")
    engine = create_engine(url, clock=SettableClock(MORNING))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def load(sessions: async_sessionmaker[AsyncSession], text: str) -> dict[str, int]:
    """Validate and load in one transaction, as an operator's load does."""
    async with sessions() as session, session.begin():
        return await load_directory(session, parse_directory(text), actor="tests", now=MORNING)


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
    async with sessions() as session:
        localities = [
            (
                row.id,
                row.code,
                row.name,
                row.operating_model,
                row.pathway_team_types,
                tuple(row.postcode_districts),
            )
            for row in await session.scalars(select(Locality).order_by(Locality.code))
        ]
        practices = [
            (row.id, row.ods_code, row.name, row.postcode, row.locality_id)
            for row in await session.scalars(select(Practice).order_by(Practice.ods_code))
        ]
        teams = [
            (
                row.id,
                row.code,
                row.name,
                row.team_type,
                row.locality_id,
                row.backup_team_id,
                row.retired_at,
            )
            for row in await session.scalars(select(Team).order_by(Team.code))
        ]
        coverage = sorted(
            (str(row.team_id), str(row.practice_id), row.linked_worker or "")
            for row in await session.scalars(select(TeamPractice))
        )
    return {
        "localities": localities,
        "practices": practices,
        "teams": teams,
        "coverage": [tuple(row) for row in coverage],
    }


async def team_row(sessions: async_sessionmaker[AsyncSession], code: str) -> Team:
    async with sessions() as session:
        team = await session.scalar(select(Team).where(Team.code == code))
    assert team is not None, f"team {code} is not in the database"
    return team


async def test_loading_the_demo_directory_fills_the_tables(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = parse_directory(DEMO_TEXT)

    counts = await load(sessions, DEMO_TEXT)

    expected = {
        "localities": len(directory.localities),
        "practices": len(directory.practices),
        "teams": len(directory.teams),
        # Into an empty database every entry is a change, as is the organisation.
        "changes": 1 + len(directory.localities) + len(directory.practices) + len(directory.teams),
    }
    assert counts == expected
    state = await snapshot(sessions)
    tables = ("localities", "practices", "teams")
    assert {name: len(state[name]) for name in tables} == {name: expected[name] for name in tables}
    assert len(state["coverage"]) == sum(len(team.practices) for team in directory.teams)
    assert all(row[-1] is None for row in state["teams"]), "no team is retired"
    assert {row[1]: row[2] for row in state["localities"]} == {
        entry.code: entry.name for entry in directory.localities
    }
    assert {row[1]: (row[2], row[3]) for row in state["practices"]} == {
        entry.ods_code: (entry.name, entry.postcode) for entry in directory.practices
    }
    assert {row[1]: (row[2], row[3]) for row in state["teams"]} == {
        entry.code: (entry.name, entry.type) for entry in directory.teams
    }
    plmdt = await team_row(sessions, "plmdt-north-1")
    lit = await team_row(sessions, "lit-north")
    assert plmdt.backup_team_id == lit.id
    east = next(row for row in state["localities"] if row[1] == "east")
    assert east[3] == "B"
    assert east[5] == ("XW4", "XW5")


async def test_loading_the_same_directory_twice_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    first = await snapshot(sessions)

    counts = await load(sessions, DEMO_TEXT)

    assert counts["teams"] == len(first["teams"])
    second = await snapshot(sessions)
    assert second == first
    assert [(row[0], row[1]) for row in second["teams"]] == [
        (row[0], row[1]) for row in first["teams"]
    ]


async def test_a_team_removed_from_the_file_is_retired_not_deleted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    before = await team_row(sessions, "plmdt-south-3")
    data = demo_data()
    del data["teams"][team_index(data, "plmdt-south-3")]

    await load(sessions, dump(data))

    retired = await team_row(sessions, "plmdt-south-3")
    assert retired.id == before.id
    assert retired.retired_at is not None
    assert retired.coverage == []
    state = await snapshot(sessions)
    still_active = [row[1] for row in state["teams"] if row[-1] is None]
    assert "plmdt-south-3" not in still_active
    assert len(still_active) == len(data["teams"])


async def test_a_retired_team_put_back_in_the_file_is_active_again_with_its_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    original = await team_row(sessions, "plmdt-south-3")
    data = demo_data()
    del data["teams"][team_index(data, "plmdt-south-3")]
    await load(sessions, dump(data))

    await load(sessions, DEMO_TEXT)

    restored = await team_row(sessions, "plmdt-south-3")
    assert restored.id == original.id
    assert restored.retired_at is None
    assert [cover.practice.ods_code for cover in restored.coverage] == ["M93004"]


async def test_reloading_moves_coverage_and_linked_workers_to_what_the_file_says(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    data = demo_data()
    east_1 = data["teams"][team_index(data, "int-east-1")]
    east_2 = data["teams"][team_index(data, "int-east-2")]
    moved = east_1["practices"].pop()  # M92003 goes to East 2 with a new linked worker
    east_2["practices"].append({"ods_code": moved["ods_code"], "linked_worker": "New worker"})

    await load(sessions, dump(data))

    team_1 = await team_row(sessions, "int-east-1")
    team_2 = await team_row(sessions, "int-east-2")
    assert sorted(c.practice.ods_code for c in team_1.coverage) == ["M92001", "M92002"]
    assert {c.practice.ods_code: c.linked_worker for c in team_2.coverage}["M92003"] == (
        "New worker"
    )


async def test_an_invalid_directory_changes_nothing_in_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    before = await snapshot(sessions)
    # Renames, a removed team, and one bad reference: none of it may land.
    data = demo_data()
    data["localities"][0]["name"] = "Renamed North"
    data["practices"][0]["name"] = "Renamed Surgery"
    del data["teams"][team_index(data, "plmdt-south-3")]
    _unknown_backup(data)

    with pytest.raises(InvalidDirectory):
        await load(sessions, dump(data))

    assert await snapshot(sessions) == before


async def test_a_failure_part_way_through_loading_rolls_everything_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    before = await snapshot(sessions)
    data = demo_data()
    data["localities"][0]["name"] = "Renamed North"
    data["practices"][0]["name"] = "Renamed Surgery"
    del data["teams"][team_index(data, "plmdt-south-3")]
    # A coverage reference to a practice that does not exist, on the last team: the loader
    # has already updated localities, practices and teams (and retired one) when it fails.
    data["teams"][-1]["practices"] = [{"ods_code": "Z99998"}]
    # Schema-valid but never checked for consistency: as a caller that skips parse_directory.
    unchecked = DirectoryFile.model_validate(data)

    with pytest.raises((KeyError, InvalidDirectory)):
        async with sessions() as session, session.begin():
            await load_directory(session, unchecked, actor="tests", now=MORNING)

    assert await snapshot(sessions) == before


async def test_a_load_the_database_refuses_leaves_the_previous_directory_in_place(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, DEMO_TEXT)
    before = await snapshot(sessions)
    data = demo_data()
    data["localities"][0]["name"] = "Renamed North"
    i = team_index(data, "plmdt-north-1")
    data["teams"][i]["practices"].append({"ods_code": "M91001"})  # listed twice by one team

    with pytest.raises((IntegrityError, InvalidDirectory)):
        await load(sessions, dump(data))

    assert await snapshot(sessions) == before
