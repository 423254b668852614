"""Which team serves this patient for this pathway, with each step explained.

The locality's operating model is data: Model A and Model B carry the default pathway-to-team-type
mapping, and a custom locality names its own. The answer is never an error: a case that cannot be
placed goes to the county queue rather than being stranded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.identifiers import UNKNOWN_PRACTICE
from services.shared.vocabulary import UNASSIGNED_PATHWAYS, Escalation, Pathway, TeamType
from services.teams.directory.hours import is_open, local_description, next_opening
from services.teams.directory.models import Locality, Practice, Team, TeamPractice

MODEL_TEAM_TYPES: dict[str, dict[Pathway, TeamType]] = {
    "A": {
        Pathway.RAPID_RESPONSE: TeamType.LOCALITY_INTEGRATED,
        Pathway.REABLEMENT: TeamType.LOCALITY_INTEGRATED,
        Pathway.ROUTINE_ASSESSMENT: TeamType.PLMDT,
        Pathway.CASE_MANAGEMENT: TeamType.PLMDT,
        Pathway.EQUIPMENT: TeamType.EQUIPMENT,
    },
    "B": {
        Pathway.RAPID_RESPONSE: TeamType.INTEGRATED,
        Pathway.REABLEMENT: TeamType.INTEGRATED,
        Pathway.ROUTINE_ASSESSMENT: TeamType.INTEGRATED,
        Pathway.CASE_MANAGEMENT: TeamType.INTEGRATED,
        Pathway.EQUIPMENT: TeamType.EQUIPMENT,
    },
}

# Team types found through the practices they cover rather than the locality as a whole.
PRACTICE_LINKED = frozenset({TeamType.PLMDT, TeamType.INTEGRATED})
# Long-term work belongs to the team of the patient's own practice: without the practice it
# is not guessed (the first team by code is nobody's choice), call handlers find it.
LONG_TERM = frozenset({Pathway.ROUTINE_ASSESSMENT, Pathway.CASE_MANAGEMENT})
PRACTICE_NEEDED = "practice_needed"


@dataclass
class Step:
    code: str
    message: str


def capacity_known(team: Team, at: datetime, max_age: timedelta) -> bool:
    """Capacity reported longer than ``max_age`` before ``at`` is unknown, not trusted."""
    updated = team.capacity_updated_at
    return updated is not None and at - updated <= max_age


@dataclass(frozen=True)
class Availability:
    """What the resolver may rely on about a team at a given moment.

    Service hours bind only cases that cannot wait: every escalation, and the pathways the
    patient's locality lists as time-critical (by default rapid response). Other work for a
    team that is outside its hours tonight stays with that team, which takes it when it opens.
    Being closed (operating status) or full binds every case.
    """

    at: datetime
    capacity_max_age: timedelta
    check_hours: bool = True
    # Teams already tried for this case (they declined it or let it lapse): passed over.
    excluded: frozenset[uuid.UUID] = frozenset()

    def for_case(
        self, pathway: Pathway | None, escalation: Escalation | None, locality: Locality | None
    ) -> Availability:
        critical = locality is not None and pathway in locality.time_critical_pathways
        return replace(self, check_hours=escalation is not None or critical)

    def problem(self, team: Team) -> str | None:
        """Why ``team`` cannot take a case now, or None when it can."""
        if team.retired_at is not None:
            return "is retired"
        if team.id in self.excluded:
            return "has already been tried for this case"
        if team.operating_status == "closed":
            return "is closed"
        if self.check_hours and not is_open(team.hours, self.at):
            return "is outside its service hours"
        if self.capacity_known(team) and (team.capacity_available or 0) <= 0:
            return "has no capacity"
        return None

    def capacity_known(self, team: Team) -> bool:
        return capacity_known(team, self.at, self.capacity_max_age)


@dataclass
class Resolution:
    outcome: str
    team: Team | None = None
    linked_worker: str | None = None
    locality: Locality | None = None
    explanation: list[Step] = field(default_factory=list)


def team_type_for(locality: Locality, pathway: Pathway) -> TeamType | None:
    if locality.operating_model == "custom":
        mapping = {Pathway(k): TeamType(v) for k, v in (locality.pathway_team_types or {}).items()}
    else:
        mapping = MODEL_TEAM_TYPES[locality.operating_model]
    return mapping.get(pathway)


async def resolve(
    session: AsyncSession,
    *,
    practice_ods: str | None,
    district: str | None,
    availability: Availability,
    pathway: Pathway | None = None,
    escalation: Escalation | None = None,
) -> Resolution:
    if escalation is None and pathway in UNASSIGNED_PATHWAYS:
        step = Step("no_assignment_needed", f"Pathway {pathway} is not assigned to a team")
        return Resolution("no_assignment", explanation=[step])
    resolution = Resolution("team")
    practice, locality = await locate(session, practice_ods, district, resolution.explanation)
    resolution.locality = locality
    availability = availability.for_case(pathway, escalation, locality)
    team_type = _wanted_team_type(locality, pathway, escalation, resolution.explanation)
    if team_type is None:
        return await _county_queue(session, resolution)
    if team_type in PRACTICE_LINKED and practice is None and pathway in LONG_TERM:
        message = f"{pathway} goes to the patient's practice team, and the practice is not known"
        resolution.explanation.append(Step(PRACTICE_NEEDED, message))
        return await _county_queue(session, resolution)
    primary, linked_worker = await _find_team(session, team_type, locality, practice, pathway)
    if primary is None:
        where = f"locality {locality.name}" if locality else "the county"
        resolution.explanation.append(
            Step("no_team_of_type", f"No active {team_type} team serves {where}")
        )
        return await _county_queue(session, resolution)
    team = await _first_available(session, primary, availability, resolution.explanation)
    if team is None and locality is not None:
        team = await _out_of_hours(session, locality, availability, resolution.explanation)
    if team is None:
        return await _county_queue(session, resolution)
    resolution.team = team
    resolution.linked_worker = linked_worker if team is primary else None
    _note_pressure(team, availability, resolution.explanation)
    resolution.explanation.append(Step("team_found", f"{team.name} ({team.team_type})"))
    return resolution


async def _first_available(
    session: AsyncSession, primary: Team, availability: Availability, steps: list[Step]
) -> Team | None:
    """The first team along the backup chain that can take the case now. Chains are checked
    for cycles when the directory is loaded; the visited set makes termination certain anyway."""
    visited: set[uuid.UUID] = set()
    team: Team | None = primary
    while team is not None and team.id not in visited:
        visited.add(team.id)
        problem = availability.problem(team)
        if problem is None:
            return team
        backup = await session.get(Team, team.backup_team_id) if team.backup_team_id else None
        if backup is not None:
            steps.append(Step("backup_used", f"{team.name} {problem}, so its backup {backup.name}"))
        else:
            steps.append(Step("team_unavailable", f"{team.name} {problem} and has no backup"))
        team = backup
    return None


async def _out_of_hours(
    session: AsyncSession, locality: Locality, availability: Availability, steps: list[Step]
) -> Team | None:
    if locality.out_of_hours_team_id is None:
        return None
    team = await session.get(Team, locality.out_of_hours_team_id)
    if team is None:
        return None
    problem = availability.problem(team)
    if problem is not None:
        steps.append(Step("out_of_hours_unavailable", f"{team.name} {problem}"))
        return None
    steps.append(Step("out_of_hours_used", f"No team in the chain can take it now, so {team.name}"))
    return team


def _note_pressure(team: Team, availability: Availability, steps: list[Step]) -> None:
    if not availability.check_hours and not is_open(team.hours, availability.at):
        opens = local_description(next_opening(team.hours, availability.at))
        message = f"{team.name} is outside its service hours; the case waits for it to open {opens}"
        steps.append(Step("waits_for_opening", message))
    if team.operating_status == "pressured":
        steps.append(Step("team_pressured", f"{team.name} reports that it is under pressure"))
    if team.capacity_updated_at is not None and not availability.capacity_known(team):
        steps.append(Step("capacity_unknown", f"{team.name} has not reported capacity recently"))


async def locate(
    session: AsyncSession, practice_ods: str | None, district: str | None, steps: list[Step]
) -> tuple[Practice | None, Locality | None]:
    if practice_ods and practice_ods != UNKNOWN_PRACTICE:
        practice = await session.scalar(
            select(Practice).where(Practice.ods_code == practice_ods, Practice.retired_at.is_(None))
        )
        if practice is not None:
            locality = practice.locality
            message = f"Practice {practice.ods_code} is in {locality.name} (model {locality.operating_model})"
            steps.append(Step("practice_located", message))
            return practice, locality
    steps.append(
        Step("practice_unknown", "The registered practice is unknown or not in the directory")
    )
    if district:
        active = select(Locality).where(Locality.retired_at.is_(None)).order_by(Locality.code)
        for locality in await session.scalars(active):
            if district in locality.postcode_districts:
                steps.append(
                    Step(
                        "locality_from_postcode",
                        f"Postcode district {district} is in {locality.name}",
                    )
                )
                return None, locality
    steps.append(
        Step("locality_unknown", "No locality could be found from the practice or postcode")
    )
    return None, None


def _wanted_team_type(
    locality: Locality | None,
    pathway: Pathway | None,
    escalation: Escalation | None,
    steps: list[Step],
) -> TeamType | None:
    if escalation is Escalation.SAFEGUARDING:
        steps.append(
            Step("team_type_selected", "Safeguarding concerns go to the Central Referral Unit")
        )
        return TeamType.CRU
    if locality is None or pathway is None:
        return None
    team_type = team_type_for(locality, pathway)
    if team_type is None:
        steps.append(Step("pathway_not_mapped", f"{locality.name} maps no team type to {pathway}"))
        return None
    steps.append(
        Step("team_type_selected", f"{pathway} goes to a {team_type} team in {locality.name}")
    )
    return team_type


def _takes(team: Team, pathway: Pathway | None) -> bool:
    return pathway is None or not team.pathways or pathway in team.pathways


async def _find_team(
    session: AsyncSession,
    team_type: TeamType,
    locality: Locality | None,
    practice: Practice | None,
    pathway: Pathway | None,
) -> tuple[Team | None, str | None]:
    """The team of ``team_type`` that takes ``pathway`` for this practice: one covering the
    practice first (with its linked worker), else one of the locality, else a county-wide one."""
    active = Team.team_type == team_type, Team.retired_at.is_(None)
    if team_type in PRACTICE_LINKED and practice is not None:
        covering = await session.execute(
            select(Team, TeamPractice.linked_worker)
            .join(TeamPractice, TeamPractice.team_id == Team.id)
            .where(*active, TeamPractice.practice_id == practice.id)
            .order_by(Team.code)
        )
        for team, linked_worker in covering:
            if _takes(team, pathway):
                return team, linked_worker
    candidates = [
        team
        for team in await session.scalars(select(Team).where(*active).order_by(Team.code))
        if _takes(team, pathway)
    ]
    scopes = [locality.id, None] if locality is not None else [None]
    for scope in scopes:
        for team in candidates:
            if team.locality_id == scope:
                return team, None
    return None, None


async def _county_queue(session: AsyncSession, resolution: Resolution) -> Resolution:
    """No care team can take the case: call handlers must, at once. It is never put on the
    caseload of the county contact centre, which gives advice and is not a care team."""
    resolution.outcome = "county_queue"
    resolution.team = None
    where = resolution.locality.name if resolution.locality else "the county"
    message = f"No team can take it now: for the call handlers of {where}"
    resolution.explanation.append(Step("county_queue", message))
    return resolution
