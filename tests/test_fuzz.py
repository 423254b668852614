"""Property-based fuzzing of the three APIs from their committed OpenAPI documents: requests
generated from each operation's schema, valid and not, sent by a client holding every scope.
No answer may be a 5xx, and every answer must be one the document declares, in its declared
content type and shape. Bounded (a fixed number of derandomised cases per operation), so the
run stays short and repeatable. The referral's lifecycle is also fuzzed statefully: sequences of
calls that follow the links the document declares (create, then read, timeline, cancel), each
answer checked the same way."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response

from tests.stack import SPA, Stack

ROOT = Path(__file__).resolve().parents[1]
CASES_PER_OPERATION = 5
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _cases(service: str) -> list[Any]:
    schema = schemathesis.openapi.from_path(ROOT / "openapi" / f"{service}.json")
    cases: list[Any] = []
    for result, mode in itertools.product(
        schema.get_all_operations(), [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    ):
        operation = result.ok()

        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy(generation_mode=mode))
        def draw(case: Any) -> None:
            cases.append(case)

        # An operation that takes nothing has no invalid request to make.
        with contextlib.suppress(Unsatisfiable):
            draw()
    return cases


@pytest.mark.parametrize("service", ["spa", "routing", "teams"])
async def test_generated_requests_get_documented_answers_and_never_a_5xx(
    stack: Stack, service: str
) -> None:
    token = await stack.token("fuzzer")
    failures: list[str] = []
    cases = _cases(service)
    async with stack.raw(service) as http:
        for case in cases:
            request = _request(case, str(http.base_url), token)
            response = await http.request(**request)
            try:
                case.validate_response(response, checks=CHECKS)
            except (
                Exception,
                BaseExceptionGroup,
            ) as failure:  # every case's failures, not the first
                detail = json.dumps(request.get("json"), default=str)[:200]
                summary = " | ".join(line.strip() for line in str(failure).splitlines()[:6])
                failures.append(
                    f"{case.method} {case.path} -> {response.status_code}: "
                    f"{summary[:400]} (body {detail})"
                )

    assert len(cases) > 20
    assert not failures, "\n".join(failures[:15])


def _request(case: Any, base_url: str, token: str) -> dict[str, Any]:
    """The case as keyword arguments for httpx, with the fuzzer's token."""
    request: dict[str, Any] = case.as_transport_kwargs(
        base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}
    )
    request.pop("cookies", None)
    if isinstance(request.get("data"), bytes | str):
        request["content"] = request.pop("data")
    return request


LIFECYCLE_SETTINGS = settings(
    max_examples=15,
    stateful_step_count=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


async def test_the_referral_lifecycle_along_the_documents_links(stack: Stack) -> None:
    schema = schemathesis.openapi.from_path(ROOT / "openapi" / "spa.json").include(
        path_regex="^/v1/referrals"
    )
    token = await stack.token("fuzzer")
    loop = asyncio.get_running_loop()
    answered: list[tuple[str, int]] = []

    async with stack.raw("spa") as http:

        class Lifecycle(schema.as_state_machine()):  # type: ignore[misc]
            """Runs in a thread of its own; each call is made on the stack's event loop."""

            def call(self, case: Any, **kwargs: Any) -> Response:
                sent = http.request(**_request(case, SPA, token))
                response = asyncio.run_coroutine_threadsafe(sent, loop).result(timeout=60)
                answered.append((f"{case.method} {case.path}", response.status_code))
                return Response.from_httpx(response, verify=False)

            def validate_response(self, response: Response, case: Any, **_: Any) -> None:
                case.validate_response(response, checks=CHECKS)

        await asyncio.to_thread(Lifecycle.run, settings=LIFECYCLE_SETTINGS)

    # The links were followed: referrals were made and then read by the id they were given.
    assert ("POST /v1/referrals", 201) in answered or ("POST /v1/referrals", 202) in answered
    assert ("GET /v1/referrals/{referral_id}", 200) in answered
