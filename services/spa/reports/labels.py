"""How the dashboard names the codes it counts, for people rather than for systems."""

from __future__ import annotations

from datetime import date

from services.shared.vocabulary import Channel, Pathway

CHANNELS: dict[str, str] = {
    Channel.NHS111: "NHS 111",
    Channel.COUNTY_CONTACT: "County contact centre",
    Channel.SELF: "Self-referral",
    Channel.CARER: "Carer",
    Channel.GP: "GP practice",
    Channel.AMBULANCE: "Ambulance service",
    Channel.HOSPITAL_DISCHARGE: "Hospital discharge",
    Channel.CARE_HOME: "Care home",
    Channel.COMMUNITY_TEAM: "Community team",
    Channel.SOCIAL_CARE: "Social care",
    Channel.LSPA: "Locality single point of access",
}
PATHWAYS: dict[str, str] = {
    Pathway.RAPID_RESPONSE: "Urgent community response",
    Pathway.REABLEMENT: "Reablement",
    Pathway.EQUIPMENT: "Equipment",
    Pathway.ROUTINE_ASSESSMENT: "Routine assessment",
    Pathway.CASE_MANAGEMENT: "Case management",
    Pathway.ADVICE: "Advice",
    Pathway.REDIRECT_EMERGENCY: "Redirected to emergency care",
}
NOT_ROUTED = "Not routed yet"
NOT_PLACED = "Not known"


def channel(code: str) -> str:
    return CHANNELS.get(code, code)


def pathway(code: str | None) -> str:
    return NOT_ROUTED if code is None else PATHWAYS.get(code, code)


def locality(code: str | None) -> str:
    return NOT_PLACED if code is None else code


def week(monday: date) -> str:
    """A week by its Monday, as "w/c 2 Mar" (week commencing)."""
    return f"w/c {monday.day} {monday:%b}"
