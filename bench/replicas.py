"""Several replicas, proven at length: ``tests/replicas.py`` (two replicas of every process behind
HAProxy, on a PostgreSQL cluster of the run's own) under several thousand referrals, with one
replica of each kind killed and started again, and PostgreSQL crashed and restarted, mid-load.

    .venv/bin/python bench/replicas.py [--referrals 3000] [--rate 25] [--down-seconds 3]

Prints the findings and writes them to ``bench/results/replicas.json`` and ``.md``: referrals
accepted and stored (none lost), patients stored twice, duplicate care assignments, referrals not
routed after the drain, and every webhook event delivered, each referral's numbered without a gap.
It exits non-zero when any of those is not as it must be.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.replicas import Plan, failures, missing_tools, run, scratch_directory  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def markdown(report: dict[str, Any]) -> str:
    webhooks = report["webhooks"]
    lines = [
        f"{report['referrals_posted']} referrals at {report['plan']['rate']}/s through HAProxy to two"
        " replicas of spa, spa's workers, routing and teams, on PostgreSQL.",
        "",
        "| interrupted | at s | down s | ready again after s |",
        "|---|---|---|---|",
        *(
            f"| {i['what']} | {i['at_seconds']} | {i['down_seconds']} | {i['back_in_seconds']} |"
            for i in report["interruptions"]
        ),
        "",
        "| finding | value |",
        "|---|---|",
        f"| accepted / stored / lost | {report['accepted']} / {report['stored']} / {report['lost']} |",
        f"| answers on the way (retried) | {report['answers']} |",
        f"| patients stored twice | {report['patients_stored_twice']} |",
        f"| duplicate care assignments | {report['duplicate_care_assignments']} |",
        f"| not routed after the drain | {report['not_routed_after_drain']} |",
        f"| statuses | {report['statuses']} |",
        f"| webhook events written / delivered | {webhooks['events_written']} /"
        f" {webhooks['events_delivered']} |",
        f"| deliveries (repeats) | {webhooks['deliveries']} ({webhooks['repeated_deliveries']}) |",
        f"| referrals with a gap in seq | {webhooks['referrals_with_a_gap_in_seq']} |",
        f"| referrals whose events arrived out of seq order | "
        f"{webhooks['referrals_whose_events_arrived_out_of_seq_order']} |",
        f"| seconds: load, drain | {report['seconds']['load']}, {report['seconds']['drain']} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--down-seconds", type=float, default=3.0)
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} (make tools installs them)")
    plan = Plan(referrals=args.referrals, rate=args.rate, down_seconds=args.down_seconds,
                drain_seconds=600.0)  # fmt: skip
    with scratch_directory() as scratch:
        report = asyncio.run(run(plan, scratch))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replicas.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "replicas.md").write_text(markdown(report))
    print(markdown(report))
    failed = failures(report)
    if failed:
        raise SystemExit(f"not as it must be: {', '.join(failed)}")


if __name__ == "__main__":
    main()
