"""The directory as data: the entries of a directory file, also the bodies of the admin API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from services.shared.identifiers import OdsCode, Postcode, PostcodeDistrict
from services.shared.vocabulary import Pathway, TeamType
from services.teams.directory.hours import ServiceHours

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]

# Crisis work goes to the out-of-hours service; every other pathway waits for its team to open.
DEFAULT_TIME_CRITICAL_PATHWAYS = (Pathway.RAPID_RESPONSE,)


class Discipline(StrEnum):
    SOCIAL_CARE = "social_care"
    COMMUNITY_NURSING = "community_nursing"
    OLDER_PEOPLES_MENTAL_HEALTH = "older_peoples_mental_health"
    OCCUPATIONAL_THERAPY = "occupational_therapy"
    PHYSIOTHERAPY = "physiotherapy"
    SPEECH_AND_LANGUAGE_THERAPY = "speech_and_language_therapy"
    DIETETICS = "dietetics"
    MENTAL_HEALTH_NURSING = "mental_health_nursing"
    REABLEMENT_WORKERS = "reablement_workers"


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationEntry(Entry):
    code: Code
    name: Name


class LocalityEntry(Entry):
    code: Code
    name: Name
    operating_model: Literal["A", "B", "custom"]
    pathway_team_types: dict[Pathway, TeamType] | None = None
    postcode_districts: list[PostcodeDistrict] = Field(default_factory=list, max_length=100)
    out_of_hours: Code | None = Field(default=None, description="Code of the out-of-hours team")
    time_critical_pathways: list[Pathway] = Field(
        default_factory=lambda: list(DEFAULT_TIME_CRITICAL_PATHWAYS),
        max_length=len(Pathway),
        description=(
            "Pathways that cannot wait for a team to open: a team outside its service hours "
            "passes them along its backups to the out-of-hours service. Work on any other "
            "pathway stays with a team that is outside its hours and waits for it to open."
        ),
    )


class PracticeEntry(Entry):
    ods_code: OdsCode
    name: Name
    postcode: Postcode
    locality: Code


class CoverageEntry(Entry):
    ods_code: OdsCode
    linked_worker: Name | None = None


class TeamEntry(Entry):
    code: Code
    name: Name
    type: TeamType
    locality: Code | None = None
    backup: Code | None = None
    practices: list[CoverageEntry] = Field(default_factory=list, max_length=50)
    disciplines: list[Discipline] = Field(default_factory=list)
    pathways: list[Pathway] = Field(
        default_factory=list, description="Pathways the team takes; empty means all its model sends"
    )
    hours: ServiceHours | None = Field(default=None, description="Absent: always open")
    endpoint_url: AnyHttpUrl | None = None


class DirectoryFile(Entry):
    organisation: OrganisationEntry | None = None
    localities: list[LocalityEntry]
    practices: list[PracticeEntry]
    teams: list[TeamEntry]
