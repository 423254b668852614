"""spa's calls to routing and teams, with the small part of their schemas spa relies on.

Decisions and assignments go through a ``Batcher`` each: the route jobs in flight together
(the worker runs a claimed batch side by side) are sent as one ``/batch`` request, and each job
gets its own item's answer: a result, a refusal for good (``UpstreamRefused``), or a reason to
try later.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, Field, ValidationError

from services.shared.batches import MAX_ITEMS, BatchAnswer, ItemAnswer
from services.shared.batching import Batcher
from services.shared.http import ServiceClient, outage_is_retry
from services.shared.outbox import GiveUp, RetryLater
from services.shared.vocabulary import (
    AssignmentKind,
    AssignmentStatus,
    Channel,
    Escalation,
    Need,
    Pathway,
    RedFlag,
    TeamType,
    Urgency,
)


class DecisionRequest(BaseModel):
    """What routing is told of a referral to triage it (its ``DecisionCreate``): codes, an age
    and a place; no identifiers, no free text. With the referral id, the time of the assessment
    the triage follows (none at intake) says which triage this is: a retry of the same one gets
    the decision already recorded."""

    referral_id: uuid.UUID
    assessed_at: datetime | None
    channel: Channel
    urgency: Urgency
    needs: list[Need]
    red_flags: list[RedFlag]
    age_years: int
    practice: str | None
    postcode_district: str | None
    safeguarding_concern: bool


class AssignmentRequest(BaseModel):
    """What teams is told to put a case on a caseload (its ``AssignmentCreate``); teams counts
    the acceptance window against the team's hours and answers when it ends."""

    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind
    pathway: Pathway | None
    urgency: Urgency
    decision_id: uuid.UUID | None
    risk: dict[str, Any]
    linked_worker: str | None = None
    acceptance_window: timedelta | None = None


class TeamRef(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    team_type: TeamType


class EscalationTarget(BaseModel):
    escalation: Escalation
    team: TeamRef | None


class ExplanationStep(BaseModel):
    """One step of the directory's reasoning: a code, and the same in plain words."""

    code: str
    message: str


class Decision(BaseModel):
    id: uuid.UUID
    pathway: Pathway
    priority: int
    response_target: timedelta | None
    reason: str
    rule_id: str
    rule_set_version: str
    team: TeamRef | None
    # Model B: the member of the integrated team linked to the patient's practice.
    linked_worker: str | None = None
    team_outcome: Literal["team", "county_queue", "no_assignment"]
    team_explanation: list[ExplanationStep] = Field(default_factory=list)
    # The rule holds the case for a call handler instead of a team (e.g. under_18).
    hold: str | None = None
    # The rule refuses the case outright, with this reason code: no team, no call handler.
    refuse: str | None = None
    locality_code: str | None = None
    escalations: list[EscalationTarget]


class Resolution(BaseModel):
    outcome: str
    team: TeamRef | None
    locality_code: str | None = None


class Located(BaseModel):
    locality_code: str | None


class Assignment(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind
    status: AssignmentStatus
    # When the acceptance window ends by the team's hours; absent from a teams that predates it.
    acceptance_due_at: datetime | None = None


M = TypeVar("M", bound=BaseModel)


class UpstreamRefused(GiveUp):
    """Another service refused the request for good (a 4xx other than authentication): retrying
    the same request cannot succeed, so a person has to look at the case."""

    def __init__(self, service: str, status: int) -> None:
        super().__init__(f"{service}_refused_{status}")
        self.service = service
        self.status = status


def _parse(model: type[M], service: str, body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError:
        # Most likely a version skew mid-deploy: the next try may meet the new version.
        raise RetryLater(f"{service}_answer_unreadable") from None


class _Client:
    """spa's calls are made from its outbox: an outage means "try the job later"."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | httpx.QueryParams | None = None,
    ) -> httpx.Response:
        with outage_is_retry():
            return await self._client.request(method, path, json=json, params=params)

    async def _send_batch(
        self, path: str, items: Sequence[BaseModel], answer: type[BatchAnswer[M]]
    ) -> list[ItemAnswer[M]]:
        body = {"items": [item.model_dump(mode="json") for item in items]}
        response = await self._send("POST", path, json=body)
        if response.status_code != 200:
            # Not any one item's fault (an older version mid-deploy, say): all try later.
            raise RetryLater(f"{self._client.service}_batch_{response.status_code}")
        answers = _parse(answer, self._client.service, response.content).items
        if len(answers) != len(items):
            # Answers are matched to items by position: a count that differs matches none.
            raise RetryLater(f"{self._client.service}_batch_answer_unmatched")
        return answers


def _outcome(answer: ItemAnswer[M], service: str) -> M:
    """One item's answer: its result, or why not."""
    if answer.status in (200, 201) and answer.result is not None:
        return answer.result
    if answer.status >= 500 or answer.status in (401, 403, 429):
        raise RetryLater(service)
    raise UpstreamRefused(service, answer.status)


def _result(answer: ItemAnswer[M]) -> M | None:
    return answer.result if answer.status in (200, 201) else None


class RoutingClient(_Client):
    def __init__(self, client: ServiceClient) -> None:
        super().__init__(client)
        self._decide: Batcher[DecisionRequest, ItemAnswer[Decision]] = Batcher(
            self._decide_all, max_batch=MAX_ITEMS, name="routing.decisions", tracer=client.tracer
        )

    async def decide(self, facts: DecisionRequest) -> Decision:
        """Routing answers a repeated request (a retry after a timeout) with the decision it
        recorded the first time, so a triage asked twice is recorded once."""
        return _outcome(await self._decide(facts), "routing")

    async def decide_many(self, items: list[DecisionRequest]) -> list[Decision | None]:
        """One request for many triages (a batch of route jobs): each item's decision, or None
        where routing could not give one now (that job then asks alone, and hears why)."""
        answers: list[Decision | None] = []
        for start in range(0, len(items), MAX_ITEMS):
            batch = await self._decide_all(items[start : start + MAX_ITEMS])
            answers.extend(_result(answer) for answer in batch)
        return answers

    async def _decide_all(self, items: list[DecisionRequest]) -> list[ItemAnswer[Decision]]:
        return await self._send_batch("/v1/decisions/batch", items, BatchAnswer[Decision])


class TeamsClient(_Client):
    def __init__(self, client: ServiceClient) -> None:
        super().__init__(client)
        self._assign: Batcher[AssignmentRequest, ItemAnswer[Assignment]] = Batcher(
            self._assign_all, max_batch=MAX_ITEMS, name="teams.assignments", tracer=client.tracer
        )

    async def assign(self, assignment: AssignmentRequest) -> Assignment:
        """Idempotent: teams answers a retry with the existing assignment."""
        return _outcome(await self._assign(assignment), "teams")

    async def assign_many(self, items: list[AssignmentRequest]) -> list[Assignment | None]:
        """One request for many assignments: each item's assignment, or None where teams could
        not make it now (that job then asks alone, and hears why)."""
        answers: list[Assignment | None] = []
        for start in range(0, len(items), MAX_ITEMS):
            batch = await self._assign_all(items[start : start + MAX_ITEMS])
            answers.extend(_result(answer) for answer in batch)
        return answers

    async def _assign_all(self, items: list[AssignmentRequest]) -> list[ItemAnswer[Assignment]]:
        return await self._send_batch("/v1/assignments/batch", items, BatchAnswer[Assignment])

    async def resolve_escalation(
        self, escalation: Escalation, *, practice: str | None, district: str | None
    ) -> Resolution:
        """The team that takes this escalation for the patient, and the patient's locality."""
        params = _place(practice, district) | {"escalation": escalation.value}
        response = await self._send("GET", "/v1/resolve", params=params)
        if response.status_code != 200:
            raise UpstreamRefused("teams", response.status_code)
        return _parse(Resolution, "teams", response.content)

    async def resolve_pathway(
        self,
        pathway: Pathway,
        *,
        practice: str | None,
        district: str | None,
        exclude: list[uuid.UUID],
    ) -> Resolution:
        """The next team for the pathway, passing over the teams already tried."""
        params = httpx.QueryParams({**_place(practice, district), "pathway": pathway.value})
        for team in exclude:
            params = params.add("exclude", str(team))
        response = await self._send("GET", "/v1/resolve", params=params)
        if response.status_code != 200:
            raise UpstreamRefused("teams", response.status_code)
        return _parse(Resolution, "teams", response.content)

    async def take_back(self, assignment_id: uuid.UUID, reason: str) -> bool:
        """Withdraw a case its team has not accepted; False when the team accepted it first."""
        response = await self._send(
            "POST", f"/v1/assignments/{assignment_id}/withdrawal", json={"reason": reason}
        )
        if response.status_code == 409:
            return False
        if response.status_code != 200:
            raise UpstreamRefused("teams", response.status_code)
        return True

    async def locate(self, *, practice: str | None, district: str | None) -> str | None:
        """The code of the patient's locality, if the directory knows it."""
        response = await self._send("GET", "/v1/locate", params=_place(practice, district))
        if response.status_code != 200:
            raise UpstreamRefused("teams", response.status_code)
        return _parse(Located, "teams", response.content).locality_code

    async def withdraw(self, referral_id: uuid.UUID, kind: AssignmentKind, reason: str) -> None:
        """Take the referral off the caseloads holding it for ``kind``; a repeat does nothing."""
        body = {"referral_id": str(referral_id), "kind": kind.value, "reason": reason}
        response = await self._send("POST", "/v1/assignments/withdrawals", json=body)
        if response.status_code != 200:
            raise UpstreamRefused("teams", response.status_code)


def _place(practice: str | None, district: str | None) -> dict[str, str]:
    place = {"practice": practice, "district": district}
    return {name: value for name, value in place.items() if value}
