"""The public vocabulary of the platform.

These codes are a contract with every calling system: extend with care, never rename.
"""

from enum import StrEnum

# The oldest age triage accepts; a date of birth further back than this is refused at intake.
MAX_AGE_YEARS = 130


class Tier(StrEnum):
    NATIONAL = "national"
    COUNTY = "county"
    LOCALITY = "locality"


class Channel(StrEnum):
    NHS111 = "nhs111"
    COUNTY_CONTACT = "county_contact"
    SELF = "self"
    CARER = "carer"
    GP = "gp"
    AMBULANCE = "ambulance"
    HOSPITAL_DISCHARGE = "hospital_discharge"
    CARE_HOME = "care_home"
    COMMUNITY_TEAM = "community_team"
    SOCIAL_CARE = "social_care"
    LSPA = "lspa"

    @property
    def tier(self) -> Tier:
        if self is Channel.NHS111:
            return Tier.NATIONAL
        if self in (Channel.COUNTY_CONTACT, Channel.SELF, Channel.CARER):
            return Tier.COUNTY
        return Tier.LOCALITY


class Urgency(StrEnum):
    CRISIS = "crisis"
    URGENT = "urgent"
    ROUTINE = "routine"


class Need(StrEnum):
    # The nine two-hour Urgent Community Response conditions.
    FALL = "fall"
    FRAILTY_DECOMPENSATION = "frailty_decompensation"
    REDUCED_FUNCTION = "reduced_function"
    PALLIATIVE_CRISIS = "palliative_crisis"
    URGENT_EQUIPMENT = "urgent_equipment"
    CONFUSION_DELIRIUM = "confusion_delirium"
    CATHETER_CARE = "catheter_care"
    DIABETES_SUPPORT = "diabetes_support"
    CARER_BREAKDOWN = "carer_breakdown"
    # Other needs.
    EQUIPMENT = "equipment"
    POST_DISCHARGE_SUPPORT = "post_discharge_support"
    PERSONAL_CARE = "personal_care"
    MOBILITY_ASSESSMENT = "mobility_assessment"
    LTC_MANAGEMENT = "ltc_management"
    END_OF_LIFE_CARE = "end_of_life_care"
    DEMENTIA_SUPPORT = "dementia_support"
    MEDICATION_REVIEW = "medication_review"
    WOUND_CARE = "wound_care"
    CARE_HOME_SUPPORT = "care_home_support"
    CARER_SUPPORT = "carer_support"
    INFORMATION_ADVICE = "information_advice"


UCR_NEEDS: frozenset[Need] = frozenset(
    {
        Need.FALL,
        Need.FRAILTY_DECOMPENSATION,
        Need.REDUCED_FUNCTION,
        Need.PALLIATIVE_CRISIS,
        Need.URGENT_EQUIPMENT,
        Need.CONFUSION_DELIRIUM,
        Need.CATHETER_CARE,
        Need.DIABETES_SUPPORT,
        Need.CARER_BREAKDOWN,
    }
)


class RedFlag(StrEnum):
    CHEST_PAIN = "chest_pain"
    BREATHING_DIFFICULTY = "breathing_difficulty"
    STROKE_SYMPTOMS = "stroke_symptoms"
    LOSS_OF_CONSCIOUSNESS = "loss_of_consciousness"
    SUSPECTED_FRACTURE = "suspected_fracture"
    HEAD_INJURY = "head_injury"
    SEPSIS_SIGNS = "sepsis_signs"
    MENTAL_HEALTH_CRISIS = "mental_health_crisis"
    INTOXICATION = "intoxication"


class Pathway(StrEnum):
    RAPID_RESPONSE = "rapid_response"
    REABLEMENT = "reablement"
    EQUIPMENT = "equipment"
    ROUTINE_ASSESSMENT = "routine_assessment"
    CASE_MANAGEMENT = "case_management"
    ADVICE = "advice"
    REDIRECT_EMERGENCY = "redirect_emergency"


# Pathways that end without a team assignment: advice is resolved at the county tier and a
# redirect tells the referrer to call 999 or go to ED.
UNASSIGNED_PATHWAYS: frozenset[Pathway] = frozenset({Pathway.ADVICE, Pathway.REDIRECT_EMERGENCY})


class Escalation(StrEnum):
    SAFEGUARDING = "safeguarding"


class TeamType(StrEnum):
    PLMDT = "plmdt"
    LOCALITY_INTEGRATED = "locality_integrated"
    INTEGRATED = "integrated"
    EQUIPMENT = "equipment"
    CRU = "cru"
    COUNTY_CONTACT = "county_contact"
    OUT_OF_HOURS = "out_of_hours"


class ReferralStatus(StrEnum):
    RECEIVED = "received"
    AWAITING_ASSESSMENT = "awaiting_assessment"
    TRIAGED = "triaged"
    ROUTED = "routed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REROUTED = "rerouted"
    CLOSED = "closed"
    RESOLVED_WITH_ADVICE = "resolved_with_advice"
    REDIRECTED_EMERGENCY = "redirected_emergency"
    CANCELLED = "cancelled"


class AssignmentStatus(StrEnum):
    """Where a case stands on a team's caseload: teams keeps it, spa mirrors what it hears."""

    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


class AssignmentKind(StrEnum):
    """Why a team holds a case: the care pathway, or the parallel safeguarding escalation."""

    CARE = "care"
    SAFEGUARDING = "safeguarding"
