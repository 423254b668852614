"""The routing service's calls to the teams service.

Every question to the directory goes through one ``Batcher``: the questions asked while a
request to teams is in flight (by the referrals of one batch, or by concurrent requests) go
together as the next ``POST /v1/resolutions``, so a batch of decisions costs a round trip or
two to teams rather than one or three per referral.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from services.routing.decisions.problems import DirectoryUnavailable
from services.routing.decisions.schemas import TeamResolution
from services.shared.batching import Batcher
from services.shared.http import ServiceClient
from services.shared.problems import UpstreamUnavailable
from services.shared.vocabulary import Escalation, Pathway

MAX_QUERIES = 500  # what teams takes in one request


class _Answers(BaseModel):
    items: list[TeamResolution]


class TeamsClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client
        self._ask: Batcher[dict[str, Any], TeamResolution] = Batcher(
            self._ask_all, max_batch=MAX_QUERIES, name="teams.resolutions"
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
        query = _place(practice, district)
        if pathway is not None:
            query["pathway"] = pathway.value
        if escalation is not None:
            query["escalation"] = escalation.value
        return await self._ask(query)

    async def locate(self, *, practice: str | None, district: str | None) -> str | None:
        """The code of the locality the practice (or else the postcode district) is in."""
        return (await self._ask(_place(practice, district))).locality_code

    async def _ask_all(self, queries: list[dict[str, Any]]) -> list[TeamResolution]:
        try:
            response = await self._client.request(
                "POST", "/v1/resolutions", json={"queries": queries}
            )
        except UpstreamUnavailable:
            raise DirectoryUnavailable("The teams service could not be reached.") from None
        if response.status_code != 200:
            raise DirectoryUnavailable(f"The teams service answered {response.status_code}.")
        try:
            return _Answers.model_validate_json(response.content).items
        except ValidationError:
            raise DirectoryUnavailable("The teams service sent an answer we cannot read.") from None


def _place(practice: str | None, district: str | None) -> dict[str, Any]:
    place = {"practice": practice, "district": district}
    return {name: value for name, value in place.items() if value}
