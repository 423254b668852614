"""Batch endpoints between our services: many requests in one, answered item by item.

A batch request is ``{"items": [...]}``; each item is what the single-item endpoint takes, and
is checked on its own, so an item that fails validation is that item's problem alone. The
answer is ``{"items": [...]}`` in the same order, each with the ``status`` the single-item
endpoint would have answered and either its ``result`` or its RFC 9457 ``problem``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.shared.problems import Problem, ValidationFailed, field_errors

# Items in one batch: what a worker claims at once, with room to spare.
MAX_ITEMS = 200

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS)


class ItemAnswer(BaseModel, Generic[T]):
    status: int = Field(
        description="What the single-item endpoint would have answered: 201, 200 or a problem"
    )
    result: T | None = None
    problem: dict[str, Any] | None = Field(
        default=None, description="The RFC 9457 problem document, when `status` is a problem"
    )


class BatchAnswer(BaseModel, Generic[T]):
    items: list[ItemAnswer[T]]


def checked(model: type[M], items: list[dict[str, Any]]) -> list[M | Problem]:
    """Each item validated as ``model``, or the problem saying why it is not one."""
    out: list[M | Problem] = []
    for item in items:
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            out.append(
                ValidationFailed(
                    "The item failed validation; see errors.",
                    errors=field_errors(exc.errors(), "item"),
                )
            )
    return out


def answered(result: T, created: bool) -> ItemAnswer[T]:
    return ItemAnswer[T](status=201 if created else 200, result=result)


def refused(problem: Problem) -> ItemAnswer[Any]:
    return ItemAnswer[Any](status=problem.status, problem=problem.body())
