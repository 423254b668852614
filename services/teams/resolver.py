"""Which team serves this patient for this pathway, with each step explained.

The locality's operating model is data: Model A and Model B carry the default pathway-to-team-type
mapping, and a custom locality names its own. The answer is never an error: a case that cannot be
placed goes to the county queue rather than being stranded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.identifiers import UNKNOWN_PRACTICE
from services.shared.vocabulary import UNASSIGNED_PATHWAYS, Escalation, Pathway, TeamType
from services.teams.models import Locality, Practice, Team, TeamPractice

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


@dataclass
class Step:
    code: str
    message: str


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
    pathway: Pathway | None = None,
    escalation: Escalation | None = None,
) -> Resolution:
    if escalation is None and pathway in UNASSIGNED_PATHWAYS:
        step = Step("no_assignment_needed", f"Pathway {pathway} is not assigned to a team")
        return Resolution("no_assignment", explanation=[step])
    resolution = Resolution("team")
    practice, locality = await _locate(session, practice_ods, district, resolution.explanation)
    resolution.locality = locality
    team_type = _wanted_team_type(locality, pathway, escalation, resolution.explanation)
    if team_type is None:
        return await _county_queue(session, resolution)
    team, linked_worker = await _find_team(session, team_type, locality, practice)
    if team is None:
        where = f"locality {locality.name}" if locality else "the county"
        resolution.explanation.append(
            Step("no_team_of_type", f"No active {team_type} team serves {where}")
        )
        return await _county_queue(session, resolution)
    resolution.team, resolution.linked_worker = team, linked_worker
    resolution.explanation.append(Step("team_found", f"{team.name} ({team.team_type})"))
    return resolution


async def _locate(
    session: AsyncSession, practice_ods: str | None, district: str | None, steps: list[Step]
) -> tuple[Practice | None, Locality | None]:
    if practice_ods and practice_ods != UNKNOWN_PRACTICE:
        practice = await session.scalar(select(Practice).where(Practice.ods_code == practice_ods))
        if practice is not None:
            locality = practice.locality
            message = f"Practice {practice.ods_code} is in {locality.name} (model {locality.operating_model})"
            steps.append(Step("practice_located", message))
            return practice, locality
    steps.append(
        Step("practice_unknown", "The registered practice is unknown or not in the directory")
    )
    if district:
        for locality in await session.scalars(select(Locality).order_by(Locality.code)):
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


async def _find_team(
    session: AsyncSession, team_type: TeamType, locality: Locality | None, practice: Practice | None
) -> tuple[Team | None, str | None]:
    active = (
        select(Team)
        .where(Team.team_type == team_type, Team.retired_at.is_(None))
        .order_by(Team.code)
    )
    if team_type in PRACTICE_LINKED and practice is not None:
        row = (
            await session.execute(
                select(Team, TeamPractice.linked_worker)
                .join(TeamPractice, TeamPractice.team_id == Team.id)
                .where(Team.team_type == team_type, Team.retired_at.is_(None))
                .where(TeamPractice.practice_id == practice.id)
                .order_by(Team.code)
                .limit(1)
            )
        ).first()
        if row is not None:
            return row[0], row[1]
    if locality is not None:
        team = await session.scalar(active.where(Team.locality_id == locality.id).limit(1))
        if team is not None:
            return team, None
    return await session.scalar(active.where(Team.locality_id.is_(None)).limit(1)), None


async def _county_queue(session: AsyncSession, resolution: Resolution) -> Resolution:
    resolution.outcome = "county_queue"
    team = await session.scalar(
        select(Team)
        .where(Team.team_type == TeamType.COUNTY_CONTACT, Team.retired_at.is_(None))
        .order_by(Team.locality_id.is_(None).desc(), Team.code)
        .limit(1)
    )
    resolution.team = team
    message = f"Placed on the county queue: {team.name}" if team else "Placed on the county queue"
    resolution.explanation.append(Step("county_queue", message))
    return resolution
