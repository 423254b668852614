"""The routing service's calls to the teams service."""

from __future__ import annotations

from pydantic import ValidationError

from services.routing.problems import DirectoryUnavailable
from services.routing.schemas import LocalityAnswer, TeamResolution
from services.shared.http import ServiceClient
from services.shared.problems import UpstreamUnavailable
from services.shared.vocabulary import Escalation, Pathway


class TeamsClient:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def resolve(
        self,
        *,
        practice: str | None,
        district: str | None,
        pathway: Pathway | None = None,
        escalation: Escalation | None = None,
    ) -> TeamResolution:
        params = {
            name: str(value)
            for name, value in {
                "practice": practice,
                "district": district,
                "pathway": pathway,
                "escalation": escalation,
            }.items()
            if value is not None
        }
        try:
            response = await self._client.request("GET", "/v1/resolve", params=params)
        except UpstreamUnavailable:
            raise DirectoryUnavailable("The teams service could not be reached.") from None
        if response.status_code != 200:
            raise DirectoryUnavailable(f"The teams service answered {response.status_code}.")
        try:
            return TeamResolution.model_validate_json(response.content)
        except ValidationError:
            raise DirectoryUnavailable("The teams service sent an answer we cannot read.") from None

    async def locate(self, *, practice: str | None, district: str | None) -> str | None:
        """The code of the locality the practice (or else the postcode district) is in."""
        params = {
            name: value
            for name, value in {"practice": practice, "district": district}.items()
            if value
        }
        try:
            response = await self._client.request("GET", "/v1/locate", params=params)
        except UpstreamUnavailable:
            raise DirectoryUnavailable("The teams service could not be reached.") from None
        if response.status_code != 200:
            raise DirectoryUnavailable(f"The teams service answered {response.status_code}.")
        try:
            return LocalityAnswer.model_validate_json(response.content).locality_code
        except ValidationError:
            raise DirectoryUnavailable("The teams service sent an answer we cannot read.") from None
