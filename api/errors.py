"""The one mapping from failures to HTTP problems (RFC 9457, application/problem+json).

Domain errors keep the domain's words; this module alone decides their status codes:
InvalidValue and a reused idempotency key 422 (but ContentTooLarge, an InvalidValue, 413),
NotFound 404, RuleViolation 409, LimitReached 429 (with Retry-After), an unreachable database
503. Nothing a client sends should reach the 500 handler: that one means a defect.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.json_answer import JsonAnswer
from domain.errors import (
    ContentTooLarge,
    IdempotencyKeyReused,
    InvalidValue,
    LimitReached,
    NotFound,
    RuleViolation,
)
from domain.privacy import mask_text

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("ledger.api")


class ApiProblem(Exception):
    """A failure decided by the HTTP layer itself (authentication, headers, limits)."""

    status = 400
    title = "Malformed request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class MalformedRequest(ApiProblem):
    status, title = 400, "Malformed request"


class Unauthenticated(ApiProblem):
    status, title = 401, "Unauthenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiProblem):
    status, title = 403, "Forbidden"


_SLUGS = {
    400: "malformed-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "request-too-large",
    415: "unsupported-media-type",
    422: "invalid-value",
    429: "too-many-requests",
    503: "unavailable",
    500: "internal-error",
}
_TITLES = {
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with current state",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid value",
    429: "Too many requests",
    503: "Database unavailable",
    500: "Internal error",
}


# What an unreachable database raises, answered 503. sqlite3.OperationalError: the file is
# locked or unreadable (the read models' own connections raise it directly; the event store
# wraps it as OperationalError).
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    TimeoutError,
)


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem answer. A detail may echo what the client sent (a path, a field name, a
    value): identity and mobile numbers in it are masked, whoever asked."""
    body: dict[str, Any] = {
        "type": f"urn:union-ledger:problem:{_SLUGS.get(status, str(status))}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": mask_text(detail),
    }
    if errors is not None:
        body["errors"] = [
            {key: mask_text(value) for key, value in error.items()} for error in errors
        ]
    return JsonAnswer(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_of(loc: tuple[Any, ...]) -> str:
    """("body", "members", 0, "wage") -> "members[0].wage"; ("query", "page") -> "page"."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or str(loc[0] if loc else "body")


def _validation_failed(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(400, "the body is not valid JSON")
    if any(e.get("loc") == ("body",) and e.get("type") == "missing" for e in errors):
        return problem(400, "a JSON body is required")
    return problem(
        422,
        "one or more fields are invalid",
        errors=[
            {"field": _field_of(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
            for e in errors
        ],
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.detail, title=exc.title, headers=exc.headers)

    @app.exception_handler(InvalidValue)
    def _invalid(_: Request, exc: InvalidValue) -> JSONResponse:
        return problem(422, exc.message, errors=[{"field": exc.field, "message": exc.reason}])

    @app.exception_handler(ContentTooLarge)
    def _too_large(_: Request, exc: ContentTooLarge) -> JSONResponse:
        return problem(413, exc.message, errors=[{"field": exc.field, "message": exc.reason}])

    @app.exception_handler(IdempotencyKeyReused)
    def _reused(_: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        return problem(
            422, exc.message, errors=[{"field": "Idempotency-Key", "message": exc.message}]
        )

    @app.exception_handler(NotFound)
    def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, exc.message)

    @app.exception_handler(RuleViolation)
    def _rule(_: Request, exc: RuleViolation) -> JSONResponse:
        return problem(409, exc.message, title=type(exc).__name__)

    @app.exception_handler(LimitReached)
    def _limit(_: Request, exc: LimitReached) -> JSONResponse:
        return problem(
            429,
            exc.message,
            title=type(exc).__name__,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    app.add_exception_handler(RequestValidationError, _validation_failed)  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem(503, "the database is unreachable; try again", headers={"Retry-After": "5"})

    for family in UNAVAILABLE:
        app.add_exception_handler(family, _unavailable)

    @app.exception_handler(Exception)
    def _defect(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "an internal error occurred; it has been logged")
