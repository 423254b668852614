"""Triage speed in-process: decisions per second of the default county rule set on one core.

    .venv/bin/python bench/triage.py [--seconds 5] [--json results.json]

Referrals are drawn at random (fixed seed) across the whole vocabulary, so every rule of the
table is exercised; the figure counts full evaluations with their trace.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

from services.routing.rules.evaluation import Facts, evaluate
from services.routing.rules.parsing import default_rule_set
from services.shared.vocabulary import Channel, Need, RedFlag, Urgency

TARGET_PER_SECOND = 10_000


def sample_referrals(count: int, seed: int = 7) -> list[Facts]:
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    needs, flags = list(Need), list(RedFlag)
    return [
        Facts(
            channel=rng.choice(list(Channel)),
            urgency=rng.choice(list(Urgency)),
            needs=frozenset(rng.sample(needs, rng.randint(1, 3))),
            red_flags=frozenset(rng.sample(flags, 1)) if rng.random() < 0.1 else frozenset(),
            age_years=rng.randint(0, 105),
            safeguarding_concern=rng.random() < 0.05,
        )
        for _ in range(count)
    ]


def measure(seconds: float) -> dict[str, float | int | str]:
    rule_set = default_rule_set()
    referrals = sample_referrals(10_000)
    pathways: dict[str, int] = {}
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for facts in referrals:
            evaluation = evaluate(rule_set, facts)
            pathways[evaluation.pathway] = pathways.get(evaluation.pathway, 0) + 1
        done += len(referrals)
    rate = done / elapsed
    return {
        "benchmark": "triage_in_process",
        "rule_set": rule_set.version,
        "decisions": done,
        "seconds": round(elapsed, 2),
        "decisions_per_second": round(rate),
        "target_per_second": TARGET_PER_SECOND,
        "meets_target": "yes" if rate >= TARGET_PER_SECOND else "no",
        "pathways_seen": len(pathways),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown cpu'}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.seconds)
    print("| measure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
