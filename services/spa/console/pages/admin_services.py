"""The administrator's pages of what routing and teams hold: the rule-set versions with their
static checks, and the directory with its change history.

Each is read from its service as the person (spa's issuer mints the token with the admin
role's scopes), so routing and teams decide what the person may read and their audit names
the person; spa's audit records the page view too.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from services.shared.pagination import MAX_CURSOR_LENGTH
from services.shared.problems import UpstreamUnavailable
from services.spa.audit import record_access
from services.spa.console import delegation
from services.spa.console.pages.admin_reads import (
    Capacity,
    Directory,
    DirectoryChange,
    DirectoryChangePage,
    RuleSetPage,
    TeamPage,
)
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, Visit, render, requires_role

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
Admin = Annotated[Visit, Depends(requires_role(Role.ADMIN))]
CursorParam = Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)]
RULE_SETS_SHOWN = 50
CHANGES_SHOWN = 25
TEAMS_PAGE = 200
# Enough pages of teams for any county's directory; a page past this is not fetched.
TEAM_PAGES_AT_MOST = 20
Read = TypeVar("Read", bound=BaseModel)
# Team types whose names are initials, as people write them; the rest read as words.
TEAM_TYPE_NAMES = {
    "plmdt": "Practice-linked MDT",
    "cru": "Central Referral Unit",
}


async def _get(
    visit: Visit, service: str, path: str, model: type[Read], params: dict[str, Any] | None = None
) -> Read:
    answer = await delegation.call(
        visit.request, visit.signed_in(), service, "GET", path, params=params
    )
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise UpstreamUnavailable(
            f"The {service} service gave an answer this console does not understand."
        ) from error


def _audit(visit: Visit, action: str, resource_type: str, resource_id: object) -> None:
    record_access(
        visit.db,
        client_id=visit.signed_in().principal_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
    )


@router.get("/rule-sets", response_class=HTMLResponse)
async def rule_sets_page(visit: Admin, cursor: CursorParam = None) -> Response:
    params: dict[str, Any] = {"limit": RULE_SETS_SHOWN}
    if cursor:
        params["cursor"] = cursor
    page = await _get(visit, "routing", "/v1/rule-sets", RuleSetPage, params)
    _audit(visit, "console.admin.rule_sets", "rule_sets", "*")
    return render(visit, "admin/rule_sets.html", page=page, cursor=cursor)


async def _capacities(visit: Visit) -> dict[str, Capacity]:
    """Every active team's capacity, by team code."""
    found: dict[str, Capacity] = {}
    params: dict[str, Any] = {"limit": TEAMS_PAGE}
    for _ in range(TEAM_PAGES_AT_MOST):
        page = await _get(visit, "teams", "/v1/teams", TeamPage, params)
        found.update({team.code: team.capacity for team in page.items})
        if page.next_cursor is None:
            break
        params = {"limit": TEAMS_PAGE, "cursor": page.next_cursor}
    return found


def changed_fields(change: DirectoryChange) -> list[str]:
    """The fields of an entry that a change touched, by name."""
    before, after = change.before or {}, change.after or {}
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


@router.get("/directory", response_class=HTMLResponse)
async def directory_page(visit: Admin, cursor: CursorParam = None) -> Response:
    directory = await _get(visit, "teams", "/v1/directory", Directory)
    capacities = await _capacities(visit)
    params: dict[str, Any] = {"limit": CHANGES_SHOWN}
    if cursor:
        params["cursor"] = cursor
    changes = await _get(visit, "teams", "/v1/directory/changes", DirectoryChangePage, params)
    _audit(visit, "console.admin.directory", "directory", "*")
    return render(
        visit,
        "admin/directory.html",
        directory=directory,
        capacities=capacities,
        changes=changes,
        changed_fields=changed_fields,
        team_type_names=TEAM_TYPE_NAMES,
        cursor=cursor,
    )
