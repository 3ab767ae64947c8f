"""Errors the Batch API answers with, in AWS's rest-json error shape."""

from __future__ import annotations


class BatchApiError(Exception):
    """An error response: HTTP status, AWS error code and message."""

    status = 500
    code = "ServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientException(BatchApiError):
    """A request the caller must fix (HTTP 400), as Batch answers it."""

    status = 400
    code = "ClientException"


class TooManyRequests(BatchApiError):
    """Throttling (HTTP 429)."""

    status = 429
    code = "TooManyRequestsException"
