"""The dashboard's figures as CSV: one file per chart, a header row, dates in ISO 8601, shares
as fractions to four places. Counts only: no referral, patient or team member is named."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from services.spa.reports.dashboard import (
    ChannelPathwayReport,
    ResponseTimeDistribution,
    Timeliness,
    TimelinessReport,
)

TIMELINESS_COLUMNS = (
    "week_start", "locality_code", "reached", "missed", "open", "ended_unseen", "share_within",
)  # fmt: skip


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _share(counts: Timeliness) -> str:
    share = counts.share_within
    return "" if share is None else f"{share:.4f}"


def timeliness_csv(report: TimelinessReport) -> str:
    """A row per week and locality with referrals (an empty locality: not known)."""
    rows = (
        (
            row.week_start.isoformat(),
            row.locality_code or "",
            row.counts.reached,
            row.counts.missed,
            row.counts.open,
            row.counts.ended_unseen,
            _share(row.counts),
        )
        for row in report.by_locality
    )
    return _csv(TIMELINESS_COLUMNS, rows)


def channels_and_pathways_csv(report: ChannelPathwayReport) -> str:
    """The cross-tab flat: a row per channel and pathway (an empty pathway: not routed yet)."""
    rows = ((cell.channel, cell.pathway or "", cell.referrals) for cell in report.cells)
    return _csv(("channel", "pathway", "referrals"), rows)


def response_times_csv(report: ResponseTimeDistribution) -> str:
    """A row per pathway and band of time to first contact, bounds in seconds."""
    rows = (
        (
            distribution.pathway,
            bucket.label,
            "" if bucket.lower is None else bucket.lower,
            "" if bucket.upper is None else bucket.upper,
            count,
        )
        for distribution in report.pathways
        for bucket, count in zip(report.buckets, distribution.counts, strict=True)
    )
    header = ("pathway", "band", "over_seconds", "up_to_seconds", "referrals")
    return _csv(header, rows)
