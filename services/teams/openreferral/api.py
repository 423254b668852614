"""The Open Referral UK feed's routes: HSDS 3.0's read API, with the UK profile's filters.

Reading it takes a token with ``directory:read``, or nothing at all where the deployment opens
the feed to anonymous readers (``TEAMS_OPENREFERRAL_ANONYMOUS_READ``), as the UK profile asks
of a public directory. Query parameters the feed does not take are refused, not ignored: an
integrator whose filter is silently dropped would publish the wrong services.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes

from services.shared.auth import Principal, authenticate, bearer_token
from services.shared.clock import Moment
from services.shared.db import SessionDep
from services.shared.identifiers import Postcode, postcode_district
from services.shared.problems import problem_responses
from services.shared.state import state_of
from services.shared.strict_input import OWN_QUERY_CHECK, unknown_query_parameters
from services.teams.directory.models import Team
from services.teams.openreferral import records
from services.teams.openreferral.problems import (
    OrganizationNotFound,
    ServiceAtLocationNotFound,
    ServiceNotFound,
    TaxonomyNotFound,
    TaxonomyTermNotFound,
    UnknownQueryParameter,
)
from services.teams.openreferral.schemas import (
    ApiInfoRead,
    ClockTime,
    OrganizationDetailRead,
    OrganizationPage,
    PageRead,
    ServiceAtLocationPage,
    ServiceAtLocationRead,
    ServiceDetailRead,
    ServicePage,
    ServiceRead,
    TaxonomyPage,
    TaxonomyRead,
    TaxonomyTermPage,
    TaxonomyTermRead,
    Weekday,
)
from services.teams.openreferral.service import (
    Published,
    ServiceQuery,
    coverage,
    find_coverage,
    find_organisations,
    find_teams,
    get_coverage,
    get_organisation,
    get_team,
)
from services.teams.openreferral.taxonomies import TAXONOMIES, TERMS
from services.teams.state import TeamsState

HSDS_VERSION = "3.0"
UK_PROFILE = "https://github.com/OpenReferralUK/uk-profile/blob/main/docs/index.md"
# The UK profile's API definition, at the commit whose schemas the tests check the feed against.
UK_PROFILE_OPENAPI = (
    "https://raw.githubusercontent.com/OpenReferralUK/uk-profile/"
    "ecdfabf78944d480d7f580d08b702b08cbec4b09/schema/openapi.json"
)
# Parameters HSDS or the UK profile define that the directory has nothing to answer with.
UNSUPPORTED = {
    "minimum_age": "the directory records no age range for its teams",
    "maximum_age": "the directory records no age range for its teams",
    "proximity": "the directory records no coordinates for its practices",
    "minimal": "the feed has one form of each record",
    "full": "the feed has one form of each record",
    "full_service": "an organization's services are always given in full",
}


async def feed_reader(
    request: Request,
    token: Annotated[str | None, Security(bearer_token, scopes=["directory:read"])],
) -> Principal | None:
    """The client reading the feed, or None for an anonymous reader where the feed is open.
    A token, when one is sent, is checked as on any other route."""
    state = state_of(request.app, TeamsState)
    settings = state.settings
    if token is None and settings.openreferral_anonymous_read:
        # Anonymous readers are limited by address, as clients are by their id.
        address = request.client.host if request.client else "unknown"
        await state.rate_limits.check("api", f"anonymous@{address}")
        return None
    return await authenticate(request, SecurityScopes(["directory:read"]), token)


Reader = Annotated[Principal | None, Depends(feed_reader)]


async def known_query_parameters(request: Request, _: Reader) -> None:
    """Refuse a query parameter the operation does not take (once the reader is known, so
    that a caller without a token learns nothing of the parameters)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        unknown_query_parameters(request, route, UNSUPPORTED)


setattr(known_query_parameters, OWN_QUERY_CHECK, True)


ResponseFormat = Annotated[
    Literal["json"] | None,
    Query(alias="format", description="Only `json`: the feed does not stream `ndjson`"),
]
Search = Annotated[
    str | None, Query(max_length=100, description="Part of the name or description, any case")
]
PageT = TypeVar("PageT", bound=PageRead)

router = APIRouter(
    prefix="/openreferral",
    tags=["open referral"],
    dependencies=[Depends(known_query_parameters)],
    responses=problem_responses(UnknownQueryParameter),
)


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int


async def _paging(
    page: Annotated[int, Query(ge=1, le=100_000, description="Page to return, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=100, description="Items per page")] = 50,
) -> Paging:
    return Paging(page, per_page)


PagingDep = Annotated[Paging, Depends(_paging)]


async def _service_query(
    search: Search = None,
    modified_after: Annotated[
        Moment | None,
        Query(description="Only services changed at or after this time (with its UTC offset)"),
    ] = None,
    organization_id: Annotated[uuid.UUID | None, Query(description="Only its services")] = None,
    taxonomy_term_id: Annotated[
        uuid.UUID | None, Query(description="Only services described by this term")
    ] = None,
    taxonomy_id: Annotated[
        uuid.UUID | None, Query(description="Only services described by a term of this taxonomy")
    ] = None,
    day: Annotated[Weekday | None, Query(description="Only services open on this day")] = None,
    start_time: Annotated[
        ClockTime | None, Query(description="Only services opening at or after this time")
    ] = None,
    end_time: Annotated[
        ClockTime | None, Query(description="Only services closing at or before this time")
    ] = None,
) -> ServiceQuery:
    return ServiceQuery(
        search=search,
        modified_after=modified_after,
        organization_id=organization_id,
        taxonomy_term_id=taxonomy_term_id,
        taxonomy_id=taxonomy_id,
        day=day,
        start_time=start_time,
        end_time=end_time,
    )


ServiceFilters = Annotated[ServiceQuery, Depends(_service_query)]


@router.get(
    "/", summary="The HSDS version and profile this feed follows", response_model_exclude_none=True
)
async def about_feed(_: Reader) -> ApiInfoRead:
    return ApiInfoRead(version=HSDS_VERSION, profile=UK_PROFILE, openapi_url=UK_PROFILE_OPENAPI)


@router.get(
    "/services",
    summary="Active teams as HSDS services, a page at a time",
    response_model_exclude_none=True,
)
async def list_services(
    session: SessionDep,
    _: Reader,
    paging: PagingDep,
    filters: ServiceFilters,
    text: Annotated[
        str | None, Query(max_length=100, deprecated=True, description="Use `search`")
    ] = None,
    response_format: ResponseFormat = None,
) -> ServicePage:
    if text and not filters.search:
        filters = replace(filters, search=text)
    published, teams = await find_teams(session, filters)
    return _page(ServicePage, teams, paging, lambda team: _service(team, published))


@router.get(
    "/services/{id}",
    summary="One active team as an HSDS service, with its organization and practices",
    responses=problem_responses(ServiceNotFound),
    response_model_exclude_none=True,
)
async def get_service(
    service_id: Annotated[uuid.UUID, Path(alias="id")], session: SessionDep, _: Reader
) -> ServiceDetailRead:
    published, team = await get_team(session, service_id)
    organisation = published.organisation_of(team)
    return ServiceDetailRead(
        **dict(_service(team, published)),
        organization=records.organisation(organisation) if organisation else None,
        service_at_locations=[records.service_at_location(cover) for cover in coverage(team)],
    )


@router.get(
    "/service_at_locations",
    summary="Where each active team works: the practices it covers",
    response_model_exclude_none=True,
)
async def list_service_at_locations(
    session: SessionDep,
    _: Reader,
    paging: PagingDep,
    filters: ServiceFilters,
    service_id: Annotated[uuid.UUID | None, Query(description="Only this service")] = None,
    postcode: Annotated[
        Postcode | None, Query(description="Only services whose areas cover this postcode")
    ] = None,
    response_format: ResponseFormat = None,
) -> ServiceAtLocationPage:
    district = postcode_district(postcode) if postcode else None
    query = replace(filters, service_id=service_id, district=district)
    covers = await find_coverage(session, query)
    return _page(ServiceAtLocationPage, covers, paging, records.service_at_location)


@router.get(
    "/service_at_locations/{id}",
    summary="One practice an active team covers",
    responses=problem_responses(ServiceAtLocationNotFound),
    response_model_exclude_none=True,
)
async def get_service_at_location(
    link_id: Annotated[uuid.UUID, Path(alias="id")], session: SessionDep, _: Reader
) -> ServiceAtLocationRead:
    return records.service_at_location(await get_coverage(session, link_id))


@router.get(
    "/organizations",
    summary="The organization providing the services",
    response_model_exclude_none=True,
)
async def list_organizations(
    session: SessionDep,
    _: Reader,
    paging: PagingDep,
    search: Search = None,
    response_format: ResponseFormat = None,
) -> OrganizationPage:
    organisations = await find_organisations(session, search)
    return _page(OrganizationPage, organisations, paging, records.organisation)


@router.get(
    "/organizations/{id}",
    summary="One organization, with the services it provides",
    responses=problem_responses(OrganizationNotFound),
    response_model_exclude_none=True,
)
async def get_organization(
    organisation_id: Annotated[uuid.UUID, Path(alias="id")], session: SessionDep, _: Reader
) -> OrganizationDetailRead:
    organisation = await get_organisation(session, organisation_id)
    published, teams = await find_teams(session, ServiceQuery(organization_id=organisation.id))
    return OrganizationDetailRead(
        **dict(records.organisation(organisation)),
        services=[_service(team, published) for team in teams],
    )


@router.get(
    "/taxonomies",
    summary="The vocabularies services are described with",
    response_model_exclude_none=True,
)
async def list_taxonomies(
    _: Reader, paging: PagingDep, search: Search = None, response_format: ResponseFormat = None
) -> TaxonomyPage:
    found = [row for row in TAXONOMIES if _found(search, row.name, row.description)]
    return _page(TaxonomyPage, found, paging, records.taxonomy)


@router.get(
    "/taxonomies/{id}",
    summary="One taxonomy",
    responses=problem_responses(TaxonomyNotFound),
    response_model_exclude_none=True,
)
async def get_taxonomy(
    taxonomy_id: Annotated[uuid.UUID, Path(alias="id")], _: Reader
) -> TaxonomyRead:
    for row in TAXONOMIES:
        if row.id == taxonomy_id:
            return records.taxonomy(row)
    raise TaxonomyNotFound(f"No taxonomy has the id {taxonomy_id}.")


@router.get(
    "/taxonomy_terms",
    summary="The terms services are described with",
    response_model_exclude_none=True,
)
async def list_taxonomy_terms(
    _: Reader,
    paging: PagingDep,
    search: Search = None,
    taxonomy_id: Annotated[uuid.UUID | None, Query(description="Only its terms")] = None,
    parent_id: Annotated[
        uuid.UUID | None, Query(description="Only the terms under this one (none are)")
    ] = None,
    top_only: Annotated[
        bool, Query(description="Only terms without a parent (every term here)")
    ] = False,
    response_format: ResponseFormat = None,
) -> TaxonomyTermPage:
    # The platform's vocabularies are flat: no term has a parent.
    found = [
        term
        for term in TERMS
        if parent_id is None
        and taxonomy_id in (None, term.taxonomy.id)
        and _found(search, term.name, term.description, term.code)
    ]
    return _page(TaxonomyTermPage, found, paging, records.taxonomy_term)


@router.get(
    "/taxonomy_terms/{id}",
    summary="One taxonomy term",
    responses=problem_responses(TaxonomyTermNotFound),
    response_model_exclude_none=True,
)
async def get_taxonomy_term(
    term_id: Annotated[uuid.UUID, Path(alias="id")], _: Reader
) -> TaxonomyTermRead:
    for term in TERMS:
        if term.id == term_id:
            return records.taxonomy_term(term)
    raise TaxonomyTermNotFound(f"No taxonomy term has the id {term_id}.")


def _service(team: Team, published: Published) -> ServiceRead:
    organisation = published.organisation_of(team)
    return records.service(
        team,
        published.locality_of(team),
        organisation.id if organisation else None,
        published.districts_of(team),
    )


def _found(search: str | None, *texts: str) -> bool:
    return not search or any(search.casefold() in text.casefold() for text in texts)


def _page(
    page_type: type[PageT], items: Sequence[Any], paging: Paging, record: Callable[[Any], Any]
) -> PageT:
    start = (paging.page - 1) * paging.per_page
    contents = [record(item) for item in items[start : start + paging.per_page]]
    total_pages = math.ceil(len(items) / paging.per_page)
    return page_type.model_validate(
        {
            "total_items": len(items),
            "total_pages": total_pages,
            "page_number": paging.page,
            "size": len(contents),
            "first_page": paging.page == 1,
            "last_page": paging.page >= total_pages,
            "empty": not contents,
            "contents": contents,
        }
    )
