"""HTTP API of reports (scope ``reports:read``)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.shared.audit import SERVICE_MANAGEMENT
from services.shared.auth import Principal, requires
from services.shared.clock import Moment, NowDep
from services.shared.db import SessionDep
from services.shared.problems import ValidationFailed, problem_responses
from services.shared.vocabulary import Pathway
from services.spa.audit import record_access
from services.spa.reports import service
from services.spa.reports.schemas import UCR_TARGET_SHARE, Durations, ResponseTimesRead

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MAX_RANGE = timedelta(days=366)
CSV_COLUMNS = (
    "referral_id", "channel", "pathway", "urgency", "team_code", "received_at", "accepted_at",
    "first_contact_at", "target_seconds", "seconds_to_acceptance", "seconds_to_first_contact",
    "within_target",
)  # fmt: skip
_CSV_EXAMPLE = (
    ",".join(CSV_COLUMNS) + "\n"
    "3f2c9a1e-6b7d-4e8f-9a0b-1c2d3e4f5a6b,ambulance,rapid_response,crisis,LIT-NORTH,"
    "2026-01-05T09:30:00+00:00,2026-01-05T09:41:00+00:00,2026-01-05T10:55:00+00:00,"
    "7200,660,5100,True\n"
)


@router.get(
    "/response-times",
    summary="Times to acceptance and first contact, and the share within target",
    description="`format=csv` gives one row per referral (no patient identifiers), from which "
    "a CSDS return can be built.",
    response_model=ResponseTimesRead,
    response_model_by_alias=True,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}}},
        **problem_responses(ValidationFailed),
    },
)
async def response_times(
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("reports:read")],
    start: Annotated[Moment, Query(alias="from", description="Received from (inclusive)")],
    end: Annotated[Moment, Query(alias="to", description="Received before (exclusive)")],
    pathway: Pathway | None = None,
    team: Annotated[str | None, Query(pattern=r"^[a-z0-9-]{1,64}$")] = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    if not timedelta(0) < end - start <= MAX_RANGE:
        error = {"in": "query", "field": "to", "reason": "must be after from, within 366 days"}
        raise ValidationFailed("The reporting period is not valid.", errors=[error])
    rows = await service.response_times(
        session, start=start, end=end, now=now, pathway=pathway, team=team
    )
    record_access(
        session,
        client_id=principal.client_id,
        action="report.response_times",
        purpose=SERVICE_MANAGEMENT,
        resource_type="report",
        resource_id=f"{start.isoformat()}/{end.isoformat()}",
    )
    if format == "csv":
        return Response(_csv(rows), media_type="text/csv; charset=utf-8")
    summary = _summary(rows, start=start, end=end, pathway=pathway, team=team)
    return Response(summary.model_dump_json(by_alias=True), media_type="application/json")


def _summary(rows: list[service.ResponseTime], **query: object) -> ResponseTimesRead:
    known = [row for row in rows if row.within_target is not None]
    within = sum(1 for row in known if row.within_target)
    return ResponseTimesRead.model_validate(
        {
            **query,
            "referrals": len(rows),
            "accepted": sum(1 for row in rows if row.accepted_at is not None),
            "first_contacts": sum(1 for row in rows if row.first_contact_at is not None),
            "outcome_known": len(known),
            "within_target": within,
            "share_within_target": round(within / len(known), 4) if known else None,
            "ucr_target_share": UCR_TARGET_SHARE
            if query["pathway"] == Pathway.RAPID_RESPONSE
            else None,
            "time_to_acceptance": _durations([r.seconds_to_acceptance for r in rows]),
            "time_to_first_contact": _durations([r.seconds_to_first_contact for r in rows]),
        }
    )


def _durations(values: list[float | None]) -> Durations:
    present = [value for value in values if value is not None]
    median, p90 = service.percentiles(present)
    return Durations(count=len(present), median_seconds=median, p90_seconds=p90)


def _csv(rows: list[service.ResponseTime]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = [getattr(row, column) for column in CSV_COLUMNS]
        writer.writerow(
            ["" if value is None else value.isoformat() if hasattr(value, "isoformat") else value
             for value in values]
        )  # fmt: skip
    return out.getvalue()
