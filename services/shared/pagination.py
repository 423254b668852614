"""One way to page through a list, the same on every list of the three services.

A request passes ``limit`` (how many items at most) and, after the first page, the ``cursor``
the previous page gave; the answer is ``{"items": [...], "next_cursor": ...}``, where
``next_cursor`` is null on the last page. A cursor is opaque to the caller: it holds the sort
key of the last item given (keyset paging, so a page is one index range however deep the list,
and an item added meanwhile is neither skipped nor repeated) and the name of the list it
belongs to, so one list's cursor is refused by another (``400 invalid-cursor``).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Tuple, bindparam, tuple_

from services.shared.problems import TYPE_PREFIX, BadRequest

T = TypeVar("T")

MAX_CURSOR_LENGTH = 512
_BIGGEST = 2**63 - 1

CursorQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page; absent for the first page",
    ),
]


def limit_query(default: int = 50, maximum: int = 200) -> Any:
    """The ``limit`` parameter of a list: at most ``maximum`` items a page."""
    return Annotated[int, Query(ge=1, le=maximum, description=f"Items a page, at most {maximum}")]


Limit = limit_query()
LongLimit = limit_query(maximum=500)


class InvalidCursor(BadRequest):
    type = TYPE_PREFIX + "invalid-cursor"
    title = "The cursor is not one this list gave out"


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


KeyValue = int | str | uuid.UUID | datetime


def encode(list_name: str, key: Sequence[KeyValue]) -> str:
    """The cursor after the item whose sort key is ``key``."""
    values = [value.isoformat() if isinstance(value, datetime) else str(value) for value in key]
    raw = json.dumps([list_name, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, list_name: str, types: Sequence[type]) -> tuple[Any, ...] | None:
    """The sort key a cursor of ``list_name`` holds, each value of its type in ``types``; None
    for the first page. Anything else is ``InvalidCursor``."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found = json.loads(raw.decode("utf-8"))
        if not isinstance(found, list) or len(found) != len(types) + 1 or found[0] != list_name:
            raise ValueError("not this list's")
        return tuple(_typed(value, kind) for value, kind in zip(found[1:], types, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor("The cursor is not one this list gave out.") from None


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        raise ValueError("a key value is a string")
    if kind is int:
        number = int(value)
        if not -_BIGGEST <= number <= _BIGGEST:
            raise ValueError("out of range")
        return number
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a time with its offset")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("a time out of range") from None
    if kind is str:
        return value
    raise TypeError(kind)


def after(columns: Sequence[Any], key: tuple[Any, ...] | None) -> ColumnElement[bool] | None:
    """The condition "sorts after ``key``" on ``columns`` (ascending), or None on a first page."""
    if key is None:
        return None
    if len(columns) == 1:
        condition: ColumnElement[bool] = columns[0] > key[0]
        return condition
    return tuple_(*columns) > _typed_like(columns, key)


def before(columns: Sequence[Any], key: tuple[Any, ...] | None) -> ColumnElement[bool] | None:
    """The condition "sorts before ``key``" on ``columns``, for a list newest first."""
    if key is None:
        return None
    if len(columns) == 1:
        condition: ColumnElement[bool] = columns[0] < key[0]
        return condition
    return tuple_(*columns) < _typed_like(columns, key)


def _typed_like(columns: Sequence[Any], key: tuple[Any, ...]) -> Tuple:
    """The key as bound values of its columns' own types (a time zone-aware time is bound as
    its column binds it, on SQLite as on PostgreSQL)."""
    return tuple_(
        *(
            bindparam(None, value, type_=column.type)
            for column, value in zip(columns, key, strict=True)
        )
    )


def page_of(
    rows: Sequence[T], limit: int, list_name: str, key_of: Any
) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``, so that one more says
    whether a next page exists) and the cursor after the last of them."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    return items, encode(list_name, key_of(items[-1]))
