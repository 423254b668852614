"""Every end-to-end test's log lines are captured and read: none may identify a person."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.log_scan import findings


@pytest.fixture(autouse=True)
def _logs_identify_no_one(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    # Requested before the stack starts, so the services' loggers write where this reads.
    yield
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    bad = [(kinds, line[:300]) for line in lines if (kinds := findings(line))]
    assert not bad, f"log lines that identify a person: {bad[:3]}"
