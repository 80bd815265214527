"""The error bodies the proxy sends, each in its wire format's shape, the message redacted
(middleware/redact.py): what failed, never where or which Python exception.

OpenAI's (chat completions, Responses, and every path that is not Anthropic's):
``{"error": {"message", "type", "param", "code"}}``; Anthropic's (``/v1/messages``):
``{"type": "error", "error": {"type", "message"}}``.
"""
from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from middleware.redact import redact

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
          429: "rate_limit_error", 502: "upstream_error", 503: "service_unavailable", 504: "timeout_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error",
                    429: "rate_limit_error", 501: "not_supported_error", 503: "overloaded_error", 504: "timeout_error"}


class ProxyError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": redact(message), "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(status: int, message: str, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(error_body(status, message, code, param)), status_code=status,
                    media_type="application/json", headers=headers)


def sse_error(message: str, code: str = "upstream_error", status: int = 502) -> bytes:
    """The event a broken stream ends with, before the connection closes."""
    return b"data: " + orjson.dumps(error_body(status, message, code)) + b"\n\n"


def messages_error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error shape, for ``/v1/messages``."""
    return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": redact(message)}}


def messages_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(messages_error_body(status, message)), status_code=status,
                    media_type="application/json", headers=headers)
