"""The commissioner's dashboard: response standards and referral flows over a chosen period,
each as a chart beside its table, and each table as a CSV download.

Only counts are shown; still, every view and download is audited, naming the person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.audit import SERVICE_MANAGEMENT
from services.shared.problems import ResourceNotFound
from services.spa.audit import record_access
from services.spa.console.people import Role
from services.spa.console.web import PREFIX, Visit, render, requires_role
from services.spa.reports import charts, dashboard, exports, labels
from services.spa.reports.dashboard import Period
from services.spa.reports.schemas import UCR_TARGET_SHARE

router = APIRouter(prefix=PREFIX + "/commissioner", include_in_schema=False)
Commissioner = Annotated[Visit, Depends(requires_role(Role.COMMISSIONER))]
# Checked by the page itself, so that a wrong date is shown beside the form, not as an error page.
FromQuery = Annotated[str | None, Query(alias="from")]
ToQuery = Annotated[str | None, Query(alias="to")]
LONGEST = timedelta(days=366)


@dataclass(frozen=True)
class Figure:
    """One dataset of the dashboard: how it is counted, drawn and written out."""

    query: Callable[[AsyncSession, Period, datetime], Awaitable[Any]]
    chart: Callable[[Any], Markup]
    csv: Callable[[Any], str]


FIGURES: dict[str, Figure] = {
    "urgent-response": Figure(
        dashboard.urgent_response, charts.urgent_response_chart, exports.timeliness_csv
    ),
    "reablement": Figure(dashboard.reablement, charts.reablement_chart, exports.timeliness_csv),
    "channels": Figure(
        lambda session, period, _now: dashboard.channels_and_pathways(session, period),
        charts.channels_and_pathways_chart,
        exports.channels_and_pathways_csv,
    ),
    "response-times": Figure(
        lambda session, period, _now: dashboard.response_time_distribution(session, period),
        charts.response_times_chart,
        exports.response_times_csv,
    ),
}


class ChartNotFound(ResourceNotFound):
    title = "There is no such chart"


def _day(value: str | None, field: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = (
            f"Enter the {field.removeprefix('period-')} date as a real date, like 2026-03-02"
        )
        return None


def chosen_period(
    start: str | None, end: str | None, now: datetime
) -> tuple[Period, dict[str, str]]:
    """The period asked for (both days included), or the default and what was wrong."""
    errors: dict[str, str] = {}
    default = Period.default(now)
    first = _day(start, "period-from", errors) or default.start.date()
    last = _day(end, "period-to", errors) or (default.end.date() - timedelta(days=1))
    if errors:
        return default, errors
    if last < first:
        return default, {"period-to": "The to date must be the same as or after the from date"}
    period = Period.of_days(first, last)
    if period.end - period.start > LONGEST:
        return default, {"period-to": "Choose a period of at most 366 days"}
    return period, {}


def _audit(visit: Visit, action: str, period: Period) -> None:
    record_access(
        visit.db,
        client_id=visit.signed_in().principal().client_id,
        action=action,
        purpose=SERVICE_MANAGEMENT,
        resource_type="report",
        resource_id=f"{period.start.isoformat()}/{period.end.isoformat()}",
    )


@router.get("", response_class=HTMLResponse)
async def dashboard_page(
    visit: Commissioner,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    period, errors = chosen_period(start, end, visit.now)
    if errors:
        return render(
            visit, "commissioner.html", status=422, errors=errors, asked={"from": start, "to": end}
        )
    reports = {
        name: await figure.query(visit.db, period, visit.now) for name, figure in FIGURES.items()
    }
    _audit(visit, "console.commissioner", period)
    first, last = period.start.date(), period.end.date() - timedelta(days=1)
    return render(
        visit,
        "commissioner.html",
        errors={},
        asked={"from": first.isoformat(), "to": last.isoformat()},
        period_query=f"from={first.isoformat()}&to={last.isoformat()}",
        first=first,
        last=last,
        reports=reports,
        charts={name: figure.chart(reports[name]) for name, figure in FIGURES.items()},
        labels=labels,
        standard=UCR_TARGET_SHARE,
    )


@router.get("/{chart}.csv")
async def chart_csv(
    chart: str,
    visit: Commissioner,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    figure = FIGURES.get(chart)
    if figure is None:
        raise ChartNotFound("The dashboard has no chart of that name.")
    period, errors = chosen_period(start, end, visit.now)
    if errors:
        return render(
            visit, "commissioner.html", status=422, errors=errors, asked={"from": start, "to": end}
        )
    text = figure.csv(await figure.query(visit.db, period, visit.now))
    _audit(visit, f"console.commissioner.csv.{chart}", period)
    first, last = period.start.date(), period.end.date() - timedelta(days=1)
    filename = f"{chart}_{first.isoformat()}_{last.isoformat()}.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
