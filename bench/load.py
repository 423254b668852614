"""The load generator of ``bench/e2e.py``, run in a process of its own so that its work is not
counted as the services'. It posts realistic referrals (on the JSON API, or as BaRS messages to
``$process-message`` with ``--kind bars``; or, for the ceiling app, small rows) at
a fixed arrival rate (open loop: a slow answer does not slow the arrivals) or at saturation (a
fixed number of callers, each posting again as soon as it is answered), and prints one JSON
document: requests sent, answers by status, errors, and POST latency percentiles.

    BENCH_TOKEN_URL=http://127.0.0.1:18001/oauth/token BENCH_CLIENT_ID=C BENCH_CLIENT_SECRET=S \
        python bench/load.py --url http://127.0.0.1:18001/v1/referrals --rate 100 --seconds 20
    python bench/load.py --url ... --concurrency 64 --seconds 20     # saturation
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import nhs_numbers
from tests.spa.fhir import bars

# The demo county's practices and their postcode districts (services/teams/demo_directory.yaml).
PRACTICES = {
    "M91001": "XW1", "M91002": "XW1", "M91003": "XW2", "M91004": "XW2", "M91005": "XW3",
    "M92001": "XW4", "M92002": "XW4", "M92003": "XW4", "M92004": "XW5", "M92005": "XW5",
    "M93001": "XW6", "M93002": "XW6", "M93003": "XW7", "M93004": "XW8",
}  # fmt: skip
CHANNELS = ["gp", "ambulance", "hospital_discharge", "care_home", "community_team", "lspa"]
# (urgency, needs, weight): a mix across the pathways, urgent community response most often.
CASES = [
    ("crisis", ["fall"], 4),
    ("crisis", ["frailty_decompensation", "confusion_delirium"], 2),
    ("urgent", ["post_discharge_support", "personal_care"], 3),
    ("urgent", ["urgent_equipment"], 1),
    ("routine", ["equipment"], 2),
    ("routine", ["mobility_assessment"], 3),
    ("routine", ["ltc_management", "medication_review"], 2),
    ("routine", ["dementia_support", "carer_support"], 1),
]
# (priority, SNOMED CT reason codes the county's mapping holds, weight) of a BaRS referral.
BARS_CASES = [
    ("asap", [bars.FALL], 4),
    ("urgent", [bars.FALL], 2),
    ("urgent", [bars.DELIRIUM], 2),
    ("asap", [bars.CHEST_PAIN], 1),
]
FIRST_NAMES = ["Ada", "Bryn", "Cora", "Dilys", "Eben", "Ffion", "Gwil", "Hester"]
FAMILY_NAMES = ["Testperson", "Examplewood", "Sampleton", "Mockford", "Fakenham"]


def referral(rng: random.Random, nhs_number: str) -> dict[str, Any]:
    urgency, needs, _ = rng.choices(CASES, weights=[case[2] for case in CASES])[0]
    practice = rng.choice(list(PRACTICES))
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 35))
    return {
        "channel": rng.choice(CHANNELS),
        "urgency": urgency,
        "patient": {
            "nhs_number": nhs_number,
            "given_name": rng.choice(FIRST_NAMES),
            "family_name": rng.choice(FAMILY_NAMES),
            "date_of_birth": born.isoformat(),
            "postcode": f"{PRACTICES[practice]} {rng.randrange(1, 9)}ZZ",
            "registered_practice": practice,
        },
        "needs": needs,
        "red_flags": [],
        "consent": {"basis": "direct_care_implied"},
        "reason": "Synthetic referral for the benchmark.",
    }


def bars_referral(rng: random.Random, nhs_number: str) -> dict[str, Any]:
    priority, codes, _ = rng.choices(BARS_CASES, weights=[case[2] for case in BARS_CASES])[0]
    return bars.message(
        codes=codes, priority=priority, nhs_number=nhs_number, given_name=rng.choice(FIRST_NAMES)
    )


class Tokens:
    """Client-credentials tokens from spa, renewed a minute before each expires (a soak outlasts
    any one token)."""

    def __init__(self, url: str, client_id: str, secret: str) -> None:
        self.url = url
        self.auth = aiohttp.BasicAuth(client_id, secret)
        self.token = ""
        self.renew_at = 0.0
        self.lock = asyncio.Lock()

    async def header(self, http: aiohttp.ClientSession) -> dict[str, str]:
        if time.monotonic() >= self.renew_at:
            async with self.lock:
                if time.monotonic() >= self.renew_at:
                    await self.fetch(http)
        return {"authorization": f"Bearer {self.token}"}

    async def fetch(self, http: aiohttp.ClientSession) -> None:
        form = {"grant_type": "client_credentials"}
        async with http.post(self.url, data=form, auth=self.auth) as response:
            response.raise_for_status()
            answer = await response.json()
        self.token = answer["access_token"]
        self.renew_at = time.monotonic() + max(float(answer["expires_in"]) - 60, 5)


class Load:
    def __init__(self, url: str, tokens: Tokens | None, kind: str, seed: int) -> None:
        self.url = url
        self.headers = {"content-type": "application/json"}
        self.tokens = tokens
        self.kind = kind
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.numbers = nhs_numbers(seed % 10)
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.ids: list[str] = []

    def body(self) -> bytes:
        if self.kind == "row":
            return json.dumps({"value": self.rng.random()}).encode()
        if self.kind == "bars":
            return json.dumps(bars_referral(self.rng, next(self.numbers))).encode()
        data = referral(self.rng, next(self.numbers))
        return json.dumps(data).encode()

    def request_headers(self) -> dict[str, str]:
        if self.kind == "bars":
            # X-Request-Id, X-Correlation-Id, NHSD-Target-Identifier and the FHIR media type.
            return {name.lower(): value for name, value in bars.headers().items()}
        return {**self.headers, "idempotency-key": str(uuid.uuid4())}

    def referral_id(self, answer: bytes) -> str:
        found = json.loads(answer)
        if self.kind == "bars":
            return str(bars.resource(found, "ServiceRequest")["id"])
        return str(found["id"])

    async def post(self, http: aiohttp.ClientSession) -> None:
        body = self.body()
        headers = self.request_headers()
        try:
            if self.tokens is not None:
                headers |= await self.tokens.header(http)  # not timed: the caller's own work
            started = time.perf_counter()
            async with http.post(self.url, data=body, headers=headers) as response:
                answer = await response.read()
                self.latencies.append(time.perf_counter() - started)
                self.statuses[str(response.status)] += 1
                if response.status in (200, 201, 202) and self.kind != "row":
                    self.ids.append(self.referral_id(answer))
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, StopIteration) as exc:
            # A transport failure, or an answer (a token's included) that is not what it should be.
            self.statuses[type(exc).__name__] += 1

    async def at_rate(self, rate: float, seconds: float) -> None:
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector) as http:
            tasks = []
            start = time.perf_counter()
            for index in range(int(rate * seconds)):
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.post(http)))
            await asyncio.gather(*tasks)

    async def saturate(self, concurrency: int, seconds: float) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            until = time.perf_counter() + seconds

            async def caller() -> None:
                while time.perf_counter() < until:
                    await self.post(http)

            await asyncio.gather(*(caller() for _ in range(concurrency)))

    def report(self, elapsed: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def percentile(share: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 2)

        ok = sum(
            count for status, count in self.statuses.items() if status in ("200", "201", "202")
        )
        return {
            "sent": sum(self.statuses.values()),
            "ok": ok,
            "answers": dict(self.statuses),
            "errors": sum(self.statuses.values()) - ok,
            "seconds": round(elapsed, 2),
            "per_second": round(ok / elapsed, 1) if elapsed else None,
            "post_ms": {
                "p50": percentile(0.50),
                "p90": percentile(0.90),
                "p95": percentile(0.95),
                "p99": percentile(0.99),
                "max": round(ordered[-1] * 1000, 2) if ordered else None,
                "mean": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
            },
            "ids": self.ids,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=["referral", "bars", "row"], default="referral")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=1, help="0-9: which block of NHS numbers")
    args = parser.parse_args()
    # The credentials come from the environment, never the command line.
    tokens = None
    if os.environ.get("BENCH_CLIENT_SECRET"):
        tokens = Tokens(
            os.environ["BENCH_TOKEN_URL"],
            os.environ["BENCH_CLIENT_ID"],
            os.environ["BENCH_CLIENT_SECRET"],
        )
    load = Load(args.url, tokens, args.kind, args.seed)
    started = time.perf_counter()
    if args.rate:
        run = load.at_rate(args.rate, args.seconds)
    else:
        run = load.saturate(args.concurrency, args.seconds)
    try:
        import uvloop

        uvloop.run(run)
    except ImportError:
        asyncio.run(run)
    print(json.dumps(load.report(time.perf_counter() - started)))


if __name__ == "__main__":
    main()
