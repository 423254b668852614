"""The routing service's calls to the teams service.

Every question to the directory goes through one ``Batcher``: the questions asked while a
request to teams is in flight (by the referrals of one batch, or by concurrent requests) go
together as the next ``POST /v1/resolutions``, so a batch of decisions costs a round trip or
two to teams rather than one or three per referral.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from services.routing.decisions.problems import DirectoryUnavailable
from services.routing.decisions.schemas import TeamResolution
from services.shared.batching import Batcher
from services.shared.http import ServiceClient
from services.shared.problems import UpstreamUnavailable
from services.shared.vocabulary import Escalation, Pathway

MAX_QUERIES = 500  # what teams takes in one request


class ResolutionQuery(BaseModel):
    """One question to the directory (its ``ResolutionQuery``): the team for a pathway or an
    escalation where the patient is; with neither, only the patient's locality."""

    practice: str | None = None
    district: str | None = None
    pathway: Pathway | None = None
    escalation: Escalation | None = None


class _Answers(BaseModel):
    items: list[TeamResolution]


class TeamsClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client
        self._ask: Batcher[ResolutionQuery, TeamResolution] = Batcher(
            self._ask_all, max_batch=MAX_QUERIES, name="teams.resolutions", tracer=client.tracer
        )

    async def resolve(
        self,
        *,
        practice: str | None,
        district: str | None,
        pathway: Pathway | None = None,
        escalation: Escalation | None = None,
    ) -> TeamResolution:
        """The team for the pathway or the escalation, with the patient's locality."""
        return await self._ask(
            ResolutionQuery(
                practice=practice or None,
                district=district or None,
                pathway=pathway,
                escalation=escalation,
            )
        )

    async def locate(self, *, practice: str | None, district: str | None) -> str | None:
        """The code of the locality the practice (or else the postcode district) is in."""
        query = ResolutionQuery(practice=practice or None, district=district or None)
        return (await self._ask(query)).locality_code

    async def _ask_all(self, queries: list[ResolutionQuery]) -> list[TeamResolution]:
        body = {"queries": [query.model_dump(mode="json", exclude_none=True) for query in queries]}
        try:
            response = await self._client.request("POST", "/v1/resolutions", json=body)
        except UpstreamUnavailable:
            raise DirectoryUnavailable("The teams service could not be reached.") from None
        if response.status_code != 200:
            raise DirectoryUnavailable(f"The teams service answered {response.status_code}.")
        try:
            return _Answers.model_validate_json(response.content).items
        except ValidationError:
            raise DirectoryUnavailable("The teams service sent an answer we cannot read.") from None
