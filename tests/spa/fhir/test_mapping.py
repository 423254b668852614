"""The code mapping is checked when it is loaded, every error listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.spa.fhir.mapping import MappingInvalid, load_mapping


def test_the_packaged_mapping_loads() -> None:
    mapping = load_mapping()
    assert ("http://snomed.info/sct", "1912002") in mapping.needs
    assert mapping.priorities["stat"] == "crisis"
    assert mapping.ambulance_categories == {"C3": "crisis", "C4": "urgent", "C5": "urgent"}
    assert ("https://fhir.nhs.uk/CodeSystem/pathways-sg-codes", "SG1137") in mapping.adds_nothing


def test_every_unknown_code_and_repeat_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        """
version: "test"
use_cases: [{system: s, code: referral}]
priorities: {routine: routine, urgent: soon}
codes:
  - {system: s, code: "1", need: falls}
  - {system: s, code: "2", red_flag: chest_ache}
  - {system: s, code: "3", need: fall, red_flag: chest_pain}
  - {system: s, code: "4", need: fall}
  - {system: s, code: "4", need: frailty_decompensation}
  - {system: s, code: "5"}
  - {system: s, code: "6", red_flag: chest_pain, adds_nothing: "a group"}
ambulance_categories: {C3: now}
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingInvalid) as refused:
        load_mapping(path)
    where = [error.split(": ")[1] for error in refused.value.errors]
    assert where == [
        "priorities.urgent",
        "ambulance_categories.C3",
        "codes.0.need",
        "codes.1.red_flag",
        "codes.2",
        "codes.5",
        "codes.6",
    ]


def test_a_listed_twice_coding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        """
version: "test"
use_cases: [{system: s, code: referral}]
priorities: {routine: routine}
codes:
  - {system: s, code: "4", need: fall}
  - {system: s, code: "4", need: frailty_decompensation}
""",
        encoding="utf-8",
    )
    with pytest.raises(MappingInvalid, match=r"codes\.1: s\|4 is listed already \(codes\.0\)"):
        load_mapping(path)
