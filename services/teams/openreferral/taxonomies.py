"""The platform's own vocabularies as HSDS taxonomies: what kind of team a service is, the
pathways it takes and the disciplines working in it.

HSDS gives every object an id; these get name-based UUIDs, the same on every request and in
every deployment, so an integrator can keep them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.shared.vocabulary import Pathway, TeamType
from services.teams.directory.entries import Discipline
from services.teams.directory.models import Team

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:spa-platform:openreferral")


def derived_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(str(part) for part in parts))


@dataclass(frozen=True)
class Taxonomy:
    code: str
    name: str
    description: str

    @property
    def id(self) -> uuid.UUID:
        return derived_id("taxonomy", self.code)


@dataclass(frozen=True)
class Term:
    taxonomy: Taxonomy
    code: str
    name: str
    description: str

    @property
    def id(self) -> uuid.UUID:
        return derived_id("taxonomy", self.taxonomy.code, "term", self.code)


TEAM_TYPES = Taxonomy(
    "team_type",
    "SPA platform team types",
    "The kinds of community health and social care team a Single Point of Access routes to.",
)
PATHWAYS = Taxonomy(
    "pathway",
    "SPA platform pathways",
    "The first responses a triaged referral is given, and so the work a team takes.",
)
DISCIPLINES = Taxonomy(
    "discipline",
    "SPA platform disciplines",
    "The professions whose staff work in a team.",
)
TAXONOMIES = (TEAM_TYPES, PATHWAYS, DISCIPLINES)

_TEAM_TYPE_TERMS = {
    TeamType.PLMDT: (
        "Practice-linked multidisciplinary team",
        "Linked to one GP practice or a cluster of practices: long-term condition, dementia and "
        "end-of-life case management, care home support and proactive review.",
    ),
    TeamType.LOCALITY_INTEGRATED: (
        "Locality integrated health and social care team",
        "Short-term work for a locality, behind its practice-linked teams: rapid response, "
        "reablement, therapy and equipment assessment.",
    ),
    TeamType.INTEGRATED: (
        "Integrated health and social care team",
        "One team for a locality's short- and long-term work, whose linked workers each face "
        "particular practices.",
    ),
    TeamType.EQUIPMENT: ("Community equipment service", "Provides equipment directly."),
    TeamType.CRU: (
        "Central Referral Unit (safeguarding)",
        "The multi-agency unit (police, social care, health) that takes safeguarding concerns.",
    ),
    TeamType.COUNTY_CONTACT: (
        "County contact centre",
        "Information, advice and guidance for the county, by phone, online or in person.",
    ),
    TeamType.OUT_OF_HOURS: (
        "Out-of-hours service",
        "Takes the work that cannot wait while a locality's teams are closed.",
    ),
}
_PATHWAY_TERMS = {
    Pathway.RAPID_RESPONSE: (
        "Rapid response",
        "Two-hour urgent community response to an adult in crisis at home.",
    ),
    Pathway.REABLEMENT: (
        "Reablement",
        "Short-term support to regain independence at home, started within two days.",
    ),
    Pathway.EQUIPMENT: ("Equipment", "Direct provision of equipment."),
    Pathway.ROUTINE_ASSESSMENT: (
        "Routine assessment",
        "A non-urgent face-to-face assessment, or a nursing or therapy intervention.",
    ),
    Pathway.CASE_MANAGEMENT: (
        "Case management",
        "Long-term condition and end-of-life case management.",
    ),
    Pathway.ADVICE: ("Advice", "Information and advice, resolved without a team's visit."),
    Pathway.REDIRECT_EMERGENCY: (
        "Redirect to emergency services",
        "Not safe for community care: the referrer is told to call 999 or go to an emergency "
        "department.",
    ),
}
_DISCIPLINE_NAMES = {
    Discipline.SOCIAL_CARE: "Social care",
    Discipline.COMMUNITY_NURSING: "Community nursing",
    Discipline.OLDER_PEOPLES_MENTAL_HEALTH: "Older people's mental health",
    Discipline.OCCUPATIONAL_THERAPY: "Occupational therapy",
    Discipline.PHYSIOTHERAPY: "Physiotherapy",
    Discipline.SPEECH_AND_LANGUAGE_THERAPY: "Speech and language therapy",
    Discipline.DIETETICS: "Dietetics",
    Discipline.MENTAL_HEALTH_NURSING: "Mental health nursing",
    Discipline.REABLEMENT_WORKERS: "Reablement workers",
}

TERMS: tuple[Term, ...] = (
    *(Term(TEAM_TYPES, code, *text) for code, text in _TEAM_TYPE_TERMS.items()),
    *(Term(PATHWAYS, code, *text) for code, text in _PATHWAY_TERMS.items()),
    *(
        Term(DISCIPLINES, code, name, f"{name} staff work in the team.")
        for code, name in _DISCIPLINE_NAMES.items()
    ),
)
_BY_CODE = {(term.taxonomy.code, term.code): term for term in TERMS}


def team_type_label(team_type: str) -> str:
    term = _BY_CODE.get((TEAM_TYPES.code, team_type))
    return term.name if term else team_type


def team_terms(team: Team) -> list[Term]:
    """What the directory says of a team, as terms: its type, the pathways it takes (when it
    names them) and its disciplines."""
    codes = [
        (TEAM_TYPES.code, team.team_type),
        *((PATHWAYS.code, pathway) for pathway in team.pathways),
        *((DISCIPLINES.code, discipline) for discipline in team.disciplines),
    ]
    return [_BY_CODE[code] for code in codes if code in _BY_CODE]
