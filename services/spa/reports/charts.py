"""Charts of the dashboard drawn on the server as SVG: no script, readable without styles.

Each chart is an image with a title and a description (``role="img"``, ``aria-labelledby``);
the table beside it carries every number, so the drawing shows the shape and the marks that
matter. Text is NHS black or dark grey on white (over 4.5:1), bars are NHS blues and greys
(over 3:1 against white, separated by white where they touch).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from services.spa.reports import labels
from services.spa.reports.dashboard import (
    ChannelPathwayReport,
    ResponseTimeDistribution,
    TimelinessReport,
)
from services.spa.reports.schemas import UCR_TARGET_SHARE

TEXT = "#212b32"
SECONDARY_TEXT = "#4c6272"
GRID = "#d8dde0"
BLUE = "#005eb8"
# Series colours in turn: each has at least 3:1 contrast against white.
SERIES = ("#005eb8", "#003087", "#4c6272", "#007f3b", "#330072", "#7c2855", "#d5281b", "#425563")

WIDTH = 720
FONT = "Frutiger W01, Arial, Helvetica, sans-serif"
_ID = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class _Plot:
    """The drawing area inside the axes."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height


def _svg(chart_id: str, title: str, description: str, height: float, body: list[Markup]) -> Markup:
    if not _ID.match(chart_id):
        raise ValueError("a chart id is lower-case letters, digits and hyphens")
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="console-chart" id="{id}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {width} {height}" width="100%" '
        'font-family="{font}" font-size="14" fill="{text}">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{description}</desc>'
        '<rect width="{width}" height="{height}" fill="#ffffff"/>{body}</svg>'
    ).format(
        id=chart_id,
        width=WIDTH,
        height=_n(height),
        font=FONT,
        text=TEXT,
        title=title,
        description=description,
        body=Markup("").join(body),
    )


def _n(value: float) -> str:
    """A coordinate, short: whole numbers without a point, others to one decimal."""
    return f"{value:.1f}".removesuffix(".0")


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    size: int = 14,
    fill: str = TEXT,
    bold: bool = False,
) -> Markup:
    return Markup(
        '<text x="{}" y="{}" text-anchor="{}" font-size="{}" fill="{}"{}>{}</text>'
    ).format(
        _n(x), _n(y), anchor, size, fill, Markup(' font-weight="bold"') if bold else "", content
    )


def _wrapped(x: float, y: float, content: str, width: float, size: int = 12) -> Markup:
    """Text centred on ``x``, broken into lines that fit ``width`` (about half an em a letter)."""
    per_line = max(4, int(width / (size * 0.55)))
    lines: list[str] = []
    for word in content.split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    spans = Markup("").join(
        Markup('<tspan x="{}" dy="{}">{}</tspan>').format(
            _n(x), 0 if index == 0 else size + 2, line
        )
        for index, line in enumerate(lines)
    )
    return Markup(
        '<text x="{}" y="{}" text-anchor="middle" font-size="{}" fill="{}">{}</text>'
    ).format(_n(x), _n(y), size, SECONDARY_TEXT, spans)


def _rect(x: float, y: float, width: float, height: float, fill: str) -> Markup:
    return Markup(
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#ffffff" stroke-width="1"/>'
    ).format(_n(x), _n(y), _n(max(width, 0)), _n(max(height, 0)), fill)


def _line(x1: float, x2: float, y1: float, y2: float, stroke: str = GRID) -> Markup:
    return Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="1"/>').format(
        _n(x1), _n(x2), _n(y1), _n(y2), stroke
    )


def scale(largest: int) -> tuple[int, int]:
    """The top of a count axis and its number of steps: at most five steps of 1, 2, 2.5 or 5
    times a power of ten (2.5 only from 25 up, so that every step is a whole number)."""
    wanted = max(largest, 1) / 5
    power = 1
    while power * 10 < wanted:
        power *= 10
    steps = [1, 2, 5, 10] if power == 1 else [1, 2, 2.5, 5, 10]
    step = int(next(factor * power for factor in steps if factor * power >= wanted))
    return step * math.ceil(max(largest, 1) / step), math.ceil(max(largest, 1) / step)


def _vertical_axis(
    plot: _Plot, top_value: int, ticks: int, label: str, *, percent: bool
) -> list[Markup]:
    """Grid lines and values up the left; ``top_value`` is 1 (100%) for shares."""
    parts = []
    for tick in range(ticks + 1):
        value = top_value * tick / ticks
        y = plot.bottom - plot.height * tick / ticks
        parts.append(_line(plot.left, plot.left + plot.width, y, y))
        shown = f"{value:.0%}" if percent else f"{value:g}"
        parts.append(_text(plot.left - 8, y + 4, shown, anchor="end", size=12))
    parts.append(_text(plot.left, plot.top - 14, label, size=12, fill=SECONDARY_TEXT))
    return parts


def share_by_week(
    chart_id: str,
    *,
    title: str,
    description: str,
    labels: Sequence[str],
    shares: Sequence[float | None],
    reference: float | None = None,
    reference_label: str = "",
) -> Markup:
    """Bars of a share (0 to 1) for each period, with a dashed line at the ``reference``."""
    plot = _Plot(left=56, top=40, width=WIDTH - 56 - 24, height=220)
    slot = plot.width / max(len(labels), 1)
    body = _vertical_axis(plot, 1, 5, "Share reached in time", percent=True)
    for index, (label, share) in enumerate(zip(labels, shares, strict=True)):
        x = plot.left + slot * index
        centre = x + slot / 2
        if share is None:
            body.append(_text(centre, plot.bottom - 6, "none", anchor="middle", size=11))
        else:
            top = plot.bottom - plot.height * share
            body.append(_rect(x + slot * 0.15, top, slot * 0.7, plot.bottom - top, BLUE))
            body.append(_text(centre, top - 4, f"{share:.0%}", anchor="middle", size=11))
        body.append(_wrapped(centre, plot.bottom + 16, label, slot))
    if reference is not None:
        body.extend(_reference_line(plot, reference, reference_label))
    return _svg(chart_id, title, description, plot.bottom + 48, body)


def _reference_line(plot: _Plot, share: float, label: str) -> list[Markup]:
    """The dashed line across the bars, named in a key above the plot (clear of the bars)."""
    y = plot.bottom - plot.height * share
    right = plot.left + plot.width
    key_y = plot.top - 18
    key_start = right - len(label) * 7.5 - 44
    dashed = Markup(
        '<line class="{}" x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" '
        'stroke-width="2" stroke-dasharray="8 5"/>'
    )
    return [
        dashed.format("console-chart__reference", _n(plot.left), _n(right), _n(y), _n(y), TEXT),
        dashed.format(
            "console-chart__key", _n(key_start), _n(key_start + 30), _n(key_y), _n(key_y), TEXT
        ),
        _text(right, key_y + 4, label, anchor="end", size=12, bold=True),
    ]


def stacked_bars(
    chart_id: str,
    *,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
) -> Markup:
    """A horizontal bar per category, split into its series (counts), with a legend above."""
    legend, legend_height = _legend([name for name, _ in series], top=8)
    row = 30
    plot = _Plot(
        left=170,
        top=legend_height + 24,
        width=WIDTH - 170 - 56,
        height=row * max(len(categories), 1),
    )
    totals = [sum(values[index] for _, values in series) for index in range(len(categories))]
    top_value, ticks = scale(max(totals, default=0))
    body = [*legend, *_horizontal_axis(plot, top_value, ticks)]
    for index, category in enumerate(categories):
        y = plot.top + row * index
        body.append(_text(plot.left - 8, y + row / 2 + 5, category, anchor="end", size=13))
        x = plot.left
        for colour, (_, values) in zip(_colours(), series, strict=False):
            width = plot.width * values[index] / top_value
            if width > 0:
                body.append(_rect(x, y + 4, width, row - 8, colour))
            x += width
        body.append(_text(x + 6, y + row / 2 + 5, str(totals[index]), size=12))
    return _svg(chart_id, title, description, plot.bottom + 40, body)


def _colours() -> list[str]:
    return list(SERIES) * 4


def _legend(names: Sequence[str], top: float) -> tuple[list[Markup], float]:
    parts: list[Markup] = []
    x, y = 16.0, top
    for colour, name in zip(_colours(), names, strict=False):
        width = 20 + len(name) * 7.5 + 20
        if x + width > WIDTH - 16 and x > 16:
            x, y = 16.0, y + 22
        parts.append(_rect(x, y + 2, 14, 14, colour))
        parts.append(_text(x + 20, y + 14, name, size=13))
        x += width
    return parts, y + 22 - top


def _horizontal_axis(plot: _Plot, top_value: int, ticks: int) -> list[Markup]:
    parts = []
    for tick in range(ticks + 1):
        x = plot.left + plot.width * tick / ticks
        parts.append(_line(x, x, plot.top, plot.bottom))
        value = top_value * tick / ticks
        parts.append(_text(x, plot.bottom + 18, f"{value:g}", anchor="middle", size=12))
    return parts


def histogram(
    chart_id: str,
    *,
    title: str,
    description: str,
    labels: Sequence[str],
    counts: Sequence[int],
    value_label: str = "Referrals",
) -> Markup:
    """Touching bars, one for each band of a measure, left to right."""
    plot = _Plot(left=56, top=40, width=WIDTH - 56 - 24, height=220)
    top_value, ticks = scale(max(counts, default=0))
    body = _vertical_axis(plot, top_value, ticks, value_label, percent=False)
    slot = plot.width / max(len(labels), 1)
    for index, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = plot.left + slot * index
        height = plot.height * count / top_value
        body.append(_rect(x, plot.bottom - height, slot, height, BLUE))
        body.append(
            _text(x + slot / 2, plot.bottom - height - 4, str(count), anchor="middle", size=11)
        )
        body.append(_wrapped(x + slot / 2, plot.bottom + 16, label, slot))
    return _svg(chart_id, title, description, plot.bottom + 56, body)


def urgent_response_chart(report: TimelinessReport) -> Markup:
    return share_by_week(
        "urgent-response-chart",
        title="Urgent community response: share reached within two hours, by week",
        description="Bars show, for each week, the share of rapid-response referrals whose "
        "first contact came within two hours of receipt, against the national standard of "
        "70%, drawn as a dashed line. Referrals still inside their two hours are left out.",
        labels=[labels.week(week.week_start) for week in report.weeks],
        shares=[week.counts.share_within for week in report.weeks],
        reference=UCR_TARGET_SHARE,
        reference_label=f"National standard {UCR_TARGET_SHARE:.0%}",
    )


def reablement_chart(report: TimelinessReport) -> Markup:
    return share_by_week(
        "reablement-chart",
        title="Reablement: share with a first contact within two days, by week",
        description="Bars show, for each week, the share of reablement referrals whose first "
        "contact came within two days of receipt. Referrals still inside their two days are "
        "left out.",
        labels=[labels.week(week.week_start) for week in report.weeks],
        shares=[week.counts.share_within for week in report.weeks],
    )


def channels_and_pathways_chart(report: ChannelPathwayReport) -> Markup:
    channels, pathways = report.channels, report.pathways
    return stacked_bars(
        "channels-chart",
        title="Referrals by channel, split by pathway",
        description="A bar for each channel referrals came through, its length the number "
        "of referrals, divided by the pathway each was routed to.",
        categories=[labels.channel(channel) for channel in channels],
        series=[
            (labels.pathway(pathway), [report.count(channel, pathway) for channel in channels])
            for pathway in pathways
        ],
    )


def response_times_chart(report: ResponseTimeDistribution) -> Markup:
    return histogram(
        "response-times-chart",
        title="Time from receipt to first contact, all pathways",
        description="The number of referrals whose first contact came within each band of "
        "time after receipt, shortest on the left.",
        labels=[bucket.label for bucket in report.buckets],
        counts=report.totals,
    )
