"""RFC 9457 problem details: the one error shape every service answers with.

Exception hierarchy::

    Problem                         base; never raised itself
    ├── BadRequest                  400 the request cannot be understood
    │   ├── BodyNotUtf8             400 the body's bytes are not UTF-8
    │   └── UnknownQueryParameter   400 a query parameter the operation does not take
    ├── ValidationFailed            422 a body, query, path or header failed validation (field errors)
    ├── AuthenticationRequired      401 no usable bearer token
    ├── InsufficientScope           403 the token lacks the scope the operation needs
    ├── ResourceNotFound            404 base of "that record does not exist (for you)"
    ├── Conflict                    409 base of "the request clashes with current state"
    ├── ContentTooLarge             413 the body is over the service's limit
    ├── UnsupportedMediaType        415 a body of a kind or charset no service takes
    ├── UpstreamUnavailable         503 another service could not be reached or failed
    ├── DatabaseUnavailable         503 the database is unavailable or busy; retry
    └── InternalError               500 an unexpected failure; says nothing about why

Services subclass these with their own, explicit ``type`` and ``title``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:spa-platform:problem:"

log = structlog.get_logger(__name__)


class Problem(Exception):
    """An error the client can act on, rendered as ``application/problem+json``."""

    type: ClassVar[str] = TYPE_PREFIX + "internal-error"
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            document["detail"] = self.detail
        if instance:
            document["instance"] = instance
        document.update(self.extensions)
        return document


class BadRequest(Problem):
    type = TYPE_PREFIX + "bad-request"
    title = "Bad request"
    status = 400


class UnknownQueryParameter(BadRequest):
    type = TYPE_PREFIX + "unknown-query-parameter"
    title = "The request names a query parameter this operation does not take"


class BodyNotUtf8(BadRequest):
    type = TYPE_PREFIX + "body-not-utf-8"
    title = "The request body is not UTF-8"


class ValidationFailed(Problem):
    type = TYPE_PREFIX + "validation-failed"
    title = "The request failed validation"
    status = 422


class AuthenticationRequired(Problem):
    type = TYPE_PREFIX + "authentication-required"
    title = "A valid bearer token is required"
    status = 401


class InsufficientScope(Problem):
    type = TYPE_PREFIX + "insufficient-scope"
    title = "The token does not grant this operation"
    status = 403


class ResourceNotFound(Problem):
    type = TYPE_PREFIX + "not-found"
    title = "Not found"
    status = 404


class MethodNotAllowed(Problem):
    type = TYPE_PREFIX + "method-not-allowed"
    title = "Method not allowed"
    status = 405


class Conflict(Problem):
    type = TYPE_PREFIX + "conflict"
    title = "Conflict with the current state"
    status = 409


class ConcurrentChange(Conflict):
    type = TYPE_PREFIX + "concurrent-change"
    title = "Someone else changed this resource at the same time; read it again and retry"


class UpstreamUnavailable(Problem):
    type = TYPE_PREFIX + "upstream-unavailable"
    title = "A service this request depends on is unavailable"
    status = 503


class DatabaseUnavailable(Problem):
    type = TYPE_PREFIX + "database-unavailable"
    title = "This service's database is unavailable or busy; retry shortly"
    status = 503


class ContentTooLarge(Problem):
    type = TYPE_PREFIX + "content-too-large"
    title = "The request body is larger than this service takes"
    status = 413


class UnsupportedMediaType(Problem):
    type = TYPE_PREFIX + "unsupported-media-type"
    title = "The request body is of a media type or charset this service does not take"
    status = 415


class InternalError(Problem):
    pass


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def field_errors(errors: Sequence[Any], document: str | None = None) -> list[dict[str, str]]:
    """Turn pydantic errors into field/reason pairs without echoing the submitted values.

    Errors of a request carry their part (``body``, ``query``) first in their location; errors
    of a whole document (a directory file) are all ``in`` that document, with the full path.
    """
    result = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if document is None:
            where, path = (location[0], location[1:]) if location else ("body", [])
        else:
            where, path = document, location
        result.append({"in": where, "field": ".".join(path), "reason": _reason(error)})
    return result


def _reason(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


_STATUS_PROBLEMS: dict[int, type[Problem]] = {
    400: BadRequest,
    401: AuthenticationRequired,
    403: InsufficientScope,
    404: ResourceNotFound,
    405: MethodNotAllowed,
    413: ContentTooLarge,
    415: UnsupportedMediaType,
}


# SQLSTATE classes and codes that say the database, not the request, is the trouble: connection
# exceptions, insufficient resources (too many connections), operator intervention (shutting
# down, starting up), and a serialization failure or deadlock, which a retry resolves.
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_RETRYABLE_STATES = ("40001", "40P01")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database being unavailable or busy, rather than a fault of ours."""
    if isinstance(exc, PoolTimeout | ConnectionError):
        return True  # no connection free in the pool's time, or none could be opened
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return True
    # The driver's error, or (asyncpg behind SQLAlchemy's adapter) the one it was raised from.
    state = getattr(exc.orig, "sqlstate", None) or getattr(
        getattr(exc.orig, "__cause__", None), "sqlstate", None
    )
    return isinstance(state, str) and (
        state[:2] in _UNAVAILABLE_CLASSES or state in _RETRYABLE_STATES
    )


def _detail_of(status: int, path: str) -> str | None:
    """Why a routing error happened, where the path tells (no path here ends in a slash)."""
    if status == 404 and len(path) > 1 and path.endswith("/"):
        return f"No path here ends in a slash; this one might be {path.rstrip('/') or '/'}."
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error (ours, validation, routing) as a problem document."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problem = ValidationFailed(
            "One or more fields are invalid; see errors.", errors=field_errors(exc.errors())
        )
        return problem_response(problem, request.url.path)

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem_class = _STATUS_PROBLEMS.get(exc.status_code, Problem)
        problem = problem_class(_detail_of(exc.status_code, request.url.path), headers=exc.headers)
        if problem_class is Problem:
            # An HTTP status we did not foresee keeps its status without inventing a type.
            body = {"type": "about:blank", "title": "HTTP error", "status": exc.status_code}
            return JSONResponse(body, exc.status_code, media_type=PROBLEM_CONTENT_TYPE)
        return problem_response(problem, request.url.path)

    async def on_stale_data(request: Request, exc: Exception) -> JSONResponse:
        # Optimistic locking refused a change based on a stale read: nothing was written.
        problem = ConcurrentChange("The resource changed while this request was being handled.")
        return problem_response(problem, request.url.path)

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a fault of ours, not the database's: a 500, logged as one
        # The database went away (a restart, a failover), turned the connection down, or could
        # not finish in time; a dead connection invalidates the pool, so a retry starts afresh.
        # Whether a commit before the failure held is not known here: the retry tells.
        log.warning("database_unavailable", error_type=type(exc).__name__)
        problem = DatabaseUnavailable(
            "The database could not complete this request. Retry it (a referral with the same "
            "Idempotency-Key) to learn whether it was stored.",
            headers={"Retry-After": "1"},
        )
        return problem_response(problem, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    for error in (DBAPIError, PoolTimeout, ConnectionError):
        app.add_exception_handler(error, on_database_error)
    app.add_exception_handler(StaleDataError, on_stale_data)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems an operation may answer with."""
    documented: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        example = {"type": problem.type, "title": problem.title, "status": problem.status}
        documented[problem.status] = {
            "description": problem.title,
            "content": {
                PROBLEM_CONTENT_TYPE: {
                    "schema": {"$ref": "#/components/schemas/ProblemDetails"},
                    "example": example,
                }
            },
        }
    return documented
