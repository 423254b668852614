"""What a request may carry, checked once for every service before any handler sees it.

PostgreSQL's text and JSON types cannot hold U+0000, and a lone surrogate has no UTF-8 form at
all: a value holding either fails at the database, or, inside a JSON column, is stored and
breaks every later read of its row. So one rule covers every header, query parameter, path
parameter, form field, and every string and key of a JSON body; a refusal is a 422 naming
where the character was, never the value. Bodies are UTF-8 (a declared charset of any other
kind is a 415, bytes that do not decode a 400), and a JSON integer must fit in 64 bits.

``StrictInput`` checks all but the path parameters before the app runs; ``storable_path``, a
dependency of every route, checks those, which exist only once a request is routed. So does
``known_query``: a query parameter the operation does not declare is a 400, never silently
ignored (a misspelt filter would otherwise answer with everything).
"""

from __future__ import annotations

import codecs
import email.message
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.shared.hardening import BodyTooLarge
from services.shared.problems import (
    BodyNotUtf8,
    ContentTooLarge,
    Problem,
    UnknownQueryParameter,
    UnsupportedMediaType,
    ValidationFailed,
    field_errors,
    problem_response,
)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE = "holds a character that cannot be stored (U+0000 or an unpaired surrogate)"
# Signed 64 bits: what a BIGINT column holds, and far beyond any count or code we take.
INTEGER_RANGE = (-(2**63), 2**63 - 1)
_MOST_DIGITS = 19
# Enough for a client to fix its request; a body of a million bad strings gets no longer answer.
_MOST_ERRORS = 20

BodyKind = Literal["json", "form"]
FieldError = dict[str, str]


def storable(text: str) -> bool:
    """Whether ``text`` can be stored as PostgreSQL text (and encoded as UTF-8)."""
    return _UNSTORABLE.search(text) is None


class _Refused:
    """Stands in, while a body is parsed, for a number this service does not take."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_OUT_OF_RANGE = _Refused(
    f"a number must be an integer from {INTEGER_RANGE[0]} to {INTEGER_RANGE[1]}, or finite"
)
_NOT_A_NUMBER = _Refused("NaN and Infinity are not JSON numbers")


def _integer(literal: str) -> int | _Refused:
    # The length first: turning a 10,000-digit literal into an int is itself the cost to avoid.
    if len(literal.removeprefix("-")) > _MOST_DIGITS:
        return _OUT_OF_RANGE
    value = int(literal)
    return value if INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1] else _OUT_OF_RANGE


def _decimal(literal: str) -> float | _Refused:
    value = float(literal)
    return value if math.isfinite(value) else _OUT_OF_RANGE


def _constant(_: str) -> _Refused:
    return _NOT_A_NUMBER


def _error(where: str, path: Iterable[str], reason: str) -> FieldError:
    return {"in": where, "field": ".".join(path), "reason": reason}


def json_errors(document: Any) -> list[FieldError]:
    """Where a parsed JSON body (or a document parsed from YAML in one) holds unstorable text,
    in a value or a key (named by its object), or a refused number, by path. Walked without
    recursion, however deep."""
    errors: list[FieldError] = []
    pending: deque[tuple[tuple[str, ...], Any]] = deque([((), document)])
    while pending and len(errors) < _MOST_ERRORS:
        path, value = pending.popleft()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or storable(key):
                    pending.append(((*path, key), item))
                else:
                    errors.append(_error("body", path, f"a name in this object {UNSTORABLE}"))
        elif isinstance(value, list):
            pending.extend(((*path, str(index)), item) for index, item in enumerate(value))
        elif isinstance(value, str) and not storable(value):
            errors.append(_error("body", path, f"the value {UNSTORABLE}"))
        elif isinstance(value, _Refused):
            errors.append(_error("body", path, value.reason))
    return errors


def pair_errors(where: str, pairs: Iterable[tuple[str, str]]) -> list[FieldError]:
    """Where name/value pairs (a query string, a form, headers) hold unstorable text."""
    errors = []
    for name, value in pairs:
        if not storable(name):
            errors.append(_error(where, (), f"a name {UNSTORABLE}"))
        elif not storable(value):
            errors.append(_error(where, (name,), f"the value {UNSTORABLE}"))
    return errors[:_MOST_ERRORS]


async def storable_path(request: Request) -> None:
    """A dependency of every route: its path parameters under the same rule as the rest."""
    errors = pair_errors(
        "path", ((name, str(value)) for name, value in request.path_params.items())
    )
    if errors:
        raise ValidationFailed("One or more fields are invalid; see errors.", errors=errors)


# Set on a route's own query check (one that must run after authentication, say): the shared
# one then leaves the route to it.
OWN_QUERY_CHECK = "checks_own_query"


async def known_query(request: Request) -> None:
    """A dependency of every route: refuse the query parameters its operation does not take."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or _checks_own_query(route.dependant):
        return
    unknown_query_parameters(request, route)


def unknown_query_parameters(
    request: Request, route: APIRoute, reasons: dict[str, str] | None = None
) -> None:
    """Raise UnknownQueryParameter naming each parameter ``route`` does not declare."""
    unknown = sorted(set(request.query_params) - query_names(route.dependant))
    if not unknown:
        return
    errors = [
        _error(
            "query", (name[:100],), (reasons or {}).get(name, "not a parameter of this operation")
        )
        for name in unknown[:_MOST_ERRORS]
    ]
    raise UnknownQueryParameter(
        f"This operation does not take {', '.join(error['field'] for error in errors)}.",
        errors=errors,
    )


def query_names(dependant: Dependant) -> set[str]:
    """The query parameters an operation declares, through all its dependencies."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= query_names(dependency)
    return names


def _checks_own_query(dependant: Dependant) -> bool:
    return getattr(dependant.call, OWN_QUERY_CHECK, False) or any(
        _checks_own_query(dependency) for dependency in dependant.dependencies
    )


def envelope_errors(scope: Scope) -> list[FieldError]:
    """Unstorable text in the request's headers or query string."""
    headers = (
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
    )
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return [*pair_errors("header", headers), *pair_errors("query", query)]


def body_kind(content_type: str | None) -> BodyKind | None:
    """How a body of this type is read, or None when no handler reads it as fields.

    Raises UnsupportedMediaType for a charset other than UTF-8, and for multipart bodies: no
    service takes files, and a form is sent URL-encoded."""
    if content_type is None:
        return None
    message = email.message.Message()
    message["content-type"] = content_type
    charset = message.get_content_charset()
    if charset is not None and _codec_name(charset) != "utf-8":
        raise UnsupportedMediaType("Request bodies are read as UTF-8; send charset=utf-8 or none.")
    kind = message.get_content_type()
    if kind.startswith("multipart/"):
        raise UnsupportedMediaType("Send JSON, or at the token endpoint a URL-encoded form.")
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return "json"
    return "form" if kind == "application/x-www-form-urlencoded" else None


def _codec_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def body_errors(kind: BodyKind, body: bytes) -> list[FieldError]:
    """Field errors of a JSON or form body; raises BodyNotUtf8 for bytes that are not UTF-8."""
    # A JSON text never holds a NUL byte (it escapes U+0000): one that does is UTF-16 or -32.
    if kind == "json" and b"\x00" in body:
        raise BodyNotUtf8("A JSON body is sent as UTF-8; this one looks like UTF-16 or UTF-32.")
    try:
        text = body.decode("utf-8")
        if kind == "form":
            return pair_errors("body", parse_qsl(text, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise BodyNotUtf8("The body, or a percent-escape in it, is not UTF-8.") from None
    # A byte order mark is allowed (RFC 8259, 8.1), as the framework's own parser allows it.
    return _parsed_json_errors(text.removeprefix("\ufeff"))


def _parsed_json_errors(text: str) -> list[FieldError]:
    try:
        document = json.loads(
            text, parse_int=_integer, parse_float=_decimal, parse_constant=_constant
        )
    except json.JSONDecodeError as exc:
        return field_errors([{"type": "json_invalid", "loc": ("body", exc.pos)}])
    except RecursionError:
        return [_error("body", (), "the body is nested too deeply")]
    return json_errors(document)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the handler is told when it reads
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app: the body already read, then whatever the client sends next."""
    parts: Iterator[Message] = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def replay() -> Message:
        return next(parts, None) or await receive()

    return replay


class StrictInput:
    """Answers a request whose input breaks the rules above with a problem; passes any other
    on, its body (read here to be checked) replayed to the app unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            receive = await _checked(scope, receive)
        except Problem as problem:
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _checked(scope: Scope, receive: Receive) -> Receive:
    """``receive`` for the app, once the request passes; else raises the problem to answer."""
    kind = body_kind(Headers(scope=scope).get("content-type"))
    errors = envelope_errors(scope)
    if not errors and kind is not None:
        try:
            body = await _read_body(receive)
        except BodyTooLarge as exc:
            raise ContentTooLarge(exc.detail) from None
        errors = body_errors(kind, body) if body else []
        receive = _replaying(body, receive)
    if errors:
        raise ValidationFailed("One or more fields are invalid; see errors.", errors=errors)
    return receive
