"""Two replicas of every process behind HAProxy on a PostgreSQL cluster of the test's own: under a
steady load, one replica of each kind is killed (SIGKILL) and started again, then PostgreSQL
crashes and restarts, and nothing accepted is lost, held twice or left unrouted, and every
webhook event arrives. ``bench/replicas.py`` runs the same with several thousand referrals."""

from __future__ import annotations

import json
import os

import pytest

from tests.replicas import Plan, failures, missing_tools, run, scratch_directory

pytestmark = pytest.mark.smoke


async def test_nothing_accepted_is_lost_while_replicas_die_and_postgresql_restarts() -> None:
    missing = missing_tools()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the replica test needs {', '.join(missing)} (make test installs them)")
        pytest.skip(f"needs {', '.join(missing)}")
    with scratch_directory() as scratch:
        report = await run(Plan(referrals=300, rate=8.0), scratch)
    print(json.dumps(report, indent=2))  # the run's figures, with -s or on failure

    assert failures(report) == [], report["refusals"]
    assert report["gave_up"] == 0
    assert report["stored_without_an_answer"] == 0
    assert report["webhooks"]["events_written"] > 0
    # Never a 500 from our services: the referrer saw only answers it knows to retry.
    assert "500" not in report["answers"]
    # Each kind of process was interrupted, and each came back.
    assert [item["what"].split()[0] for item in report["interruptions"]] == [
        "spa", "spa-worker", "routing", "teams", "postgresql"
    ]  # fmt: skip
