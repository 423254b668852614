"""The rule-file language: what a triage rule set may say, checked as it is read.

A rule set is an ordered first-match table of rules, each with its conditions and the pathway
it chooses, and the policy (priority, response target) of every pathway it chooses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.shared.vocabulary import Channel, Need, Pathway, RedFlag, Urgency


class Conditions(BaseModel):
    """All given conditions must hold; an empty set of conditions always holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red_flags_any: frozenset[RedFlag] | None = None
    needs_any: frozenset[Need] | None = None
    needs_only: frozenset[Need] | None = None
    urgency_in: frozenset[Urgency] | None = None
    channels_in: frozenset[Channel] | None = None
    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    reason: str = Field(min_length=1, max_length=300)
    when: Conditions
    pathway: Pathway
    # Overrides the pathway's response target for this rule; null means no national standard
    # applies (reablement for someone leaving a hospital bed is outside the two-day standard).
    response_target: timedelta | None = None
    # Hold the case for a call handler instead of sending it to a team, with this reason (for
    # example under_18: adult services do not take children; a handler finds the service
    # that does). The pathway is recorded with the decision but no team is asked.
    hold: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=32)
    # Refuse the case outright, with this reason code, instead of holding it: a locality whose
    # call handlers do not find other services sends the referrer back with the rule's reason
    # (for example under_18). As with a hold, the pathway is recorded and no team is asked.
    refuse: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=32)


class PathwayPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: int = Field(ge=1, le=9)
    response_target: timedelta | None = None


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    # "first": the first matching rule decides and overlaps are expected; "unique": at most one
    # rule (besides the final catch-all) may match any referral.
    hit_policy: Literal["first", "unique"] = "first"
    pathways: dict[Pathway, PathwayPolicy]
    rules: list[Rule] = Field(min_length=1)
