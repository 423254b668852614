"""The code mapping of BaRS messages (``mapping.yaml``): read and checked when spa starts,
every error listed at once, so that a bad table never reaches a referral."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.shared.vocabulary import Need, RedFlag, Urgency

DEFAULT_MAPPING = Path(__file__).with_name("mapping.yaml")

ConsentBasis = Literal["direct_care_implied", "explicit", "safeguarding_override"]


class MappingInvalid(ValueError):
    """A mapping file that must not be used; ``errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class _Coding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)


class _CodeEntry(_Coding):
    need: Need | None = None
    red_flag: RedFlag | None = None
    # A code reviewed and found to add no need or red flag of its own (another code of the same
    # message carries what matters): why, in the reviewer's words.
    adds_nothing: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        named = [self.need, self.red_flag, self.adds_nothing]
        if sum(target is not None for target in named) != 1:
            raise ValueError("an entry names exactly one of need, red_flag and adds_nothing")
        return self


class _ConsentEntry(_Coding):
    basis: ConsentBasis


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=32)
    use_cases: list[_Coding] = Field(min_length=1)
    priorities: dict[str, Urgency]
    ambulance_categories: dict[str, Urgency] = Field(default_factory=dict)
    consent: list[_ConsentEntry] = Field(default_factory=list)
    codes: list[_CodeEntry]


Key = tuple[str, str]


@dataclass(frozen=True)
class CodeMapping:
    version: str
    use_cases: frozenset[Key]
    priorities: dict[str, Urgency]
    ambulance_categories: dict[str, Urgency]
    consent: dict[Key, ConsentBasis]
    needs: dict[Key, Need]
    red_flags: dict[Key, RedFlag]
    adds_nothing: frozenset[Key]


def load_mapping(path: Path | None = None) -> CodeMapping:
    source = path or DEFAULT_MAPPING
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        parsed = _MappingFile.model_validate(document)
    except yaml.YAMLError as exc:
        raise MappingInvalid([f"{source.name}: not YAML ({type(exc).__name__})"]) from exc
    except ValidationError as exc:
        raise MappingInvalid([_described(source, error) for error in exc.errors()]) from exc
    return _mapping(parsed, source)


def _described(source: Path, error: object) -> str:
    assert isinstance(error, dict)
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{source.name}: {where}: {message}"


def _mapping(parsed: _MappingFile, source: Path) -> CodeMapping:
    errors: list[str] = []
    seen: dict[Key, int] = {}
    for index, entry in enumerate(parsed.codes):
        key = (entry.system, entry.code)
        if key in seen:
            errors.append(
                f"{source.name}: codes.{index}: {entry.system}|{entry.code} is listed already "
                f"(codes.{seen[key]})"
            )
        seen.setdefault(key, index)
    if errors:
        raise MappingInvalid(errors)
    return CodeMapping(
        version=parsed.version,
        use_cases=frozenset((case.system, case.code) for case in parsed.use_cases),
        priorities=dict(parsed.priorities),
        ambulance_categories=dict(parsed.ambulance_categories),
        consent={(entry.system, entry.code): entry.basis for entry in parsed.consent},
        needs={(e.system, e.code): e.need for e in parsed.codes if e.need is not None},
        red_flags={(e.system, e.code): e.red_flag for e in parsed.codes if e.red_flag is not None},
        adds_nothing=frozenset((e.system, e.code) for e in parsed.codes if e.adds_nothing),
    )
