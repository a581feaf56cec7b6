"""One error shape for every failure: `{"error": {"code", "message", "details"}}`.

Domain errors (interviewer.errors and the session service's) map to HTTP statuses here, so
routes raise what the service raises and never build error responses themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import DocumentError, InputError, InterviewerError, ModelUnavailable, RubricError, UnknownQuestion
from ..sessions import SessionNotFound, SessionStateError
from ..store import StoreError

log = logging.getLogger("interviewer.api")


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["no session 'a1b2c3d4e5f60718' with this token"])
    details: Any = Field(None, description="Machine-readable specifics, e.g. the invalid fields")


class ErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"error": {
        "code": "validation_error", "message": "invalid request: body.answer: Field required",
        "details": [{"field": "body.answer", "message": "Field required", "type": "missing"}]}}]})

    error: ErrorDetail


class ApiError(Exception):
    """An error raised by the API layer itself (not found, too large, busy, not ready)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


class NotFound(ApiError):
    def __init__(self, message: str):
        super().__init__(404, "not_found", message)


class Busy(ApiError):
    def __init__(self, retry_after: int):
        super().__init__(429, "busy", f"the grading queue is full; retry in {retry_after} s",
                         {"retry_after": retry_after}, {"Retry-After": str(retry_after)})


class TooLarge(ApiError, StarletteHTTPException):
    """Raised while a body is read, so FastAPI's body parsing passes it through unchanged."""

    def __init__(self, limit: int):
        StarletteHTTPException.__init__(self, 413)
        ApiError.__init__(self, 413, "payload_too_large", f"the request body is larger than {limit} bytes",
                          {"limit_bytes": limit})


# Domain errors: (status, code). The first matching class wins.
DOMAIN = [
    (SessionNotFound, 404, "not_found"),
    (UnknownQuestion, 404, "not_found"),
    (SessionStateError, 409, "conflict"),
    (InputError, 422, "invalid_input"),
    (ModelUnavailable, 503, "model_unavailable"),
    (DocumentError, 503, "document_unavailable"),
    (RubricError, 503, "rubric_invalid"),
    (StoreError, 503, "database_unavailable"),
    (InterviewerError, 503, "unavailable"),
]

ERROR_RESPONSES = {status: {"model": ErrorBody, "description": text} for status, text in [
    (400, "A body that cannot be parsed (not JSON, broken multipart data)"),
    (404, "Unknown id, or a token that is not this session's"),
    (409, "Wrong state, e.g. answering a finished session"),
    (413, "Body too large"),
    (422, "Invalid body or parameters; `details` names the fields"),
]}
BUSY_RESPONSE = {429: {"model": ErrorBody, "description": "Grading queue full; see the Retry-After header"}}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(InterviewerError)
    async def _domain(request: Request, exc: InterviewerError):
        status, code = next((s, c) for cls, s, c in DOMAIN if isinstance(exc, cls))
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(status, code, str(exc))

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError):  # locked past the timeout, disk full, ...
        log.warning("%s %s: database: %s", request.method, request.url.path, exc.orig)
        return error_response(503, "database_unavailable", "the database is unavailable; retry shortly",
                              headers={"Retry-After": "2"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()]
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, "validation_error", f"invalid request: {summary}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if isinstance(exc, ApiError):
            return await _api(request, exc)
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "payload_too_large"}
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug: logged, still in the one shape
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "unexpected server error; it has been logged")
