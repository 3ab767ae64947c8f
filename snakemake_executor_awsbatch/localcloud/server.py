"""One WSGI app for every service of the local cloud, dispatching by the SigV4 credential scope.

`batch` goes to the project's engine (`BatchApi`); everything else goes to moto's server app,
with the local cloud's account id pinned so that several local clouds in one process keep their
data apart. Fault injection (429 for Batch/Logs, 503 SlowDown for S3) and the API call log
(`api-calls.jsonl`) live here, in front of both.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

from snakemake_executor_awsbatch.localcloud import jobspec
from snakemake_executor_awsbatch.localcloud.api_errors import BatchApiError, TooManyRequests
from snakemake_executor_awsbatch.localcloud.batch_api import BatchApi
from snakemake_executor_awsbatch.localcloud.chaos import Chaos
from snakemake_executor_awsbatch.localcloud.s3head import answer_head
from snakemake_executor_awsbatch.localcloud.s3list import answer_list_objects
from snakemake_executor_awsbatch.localcloud.s3serve import Streamed, stream_get_object

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_S3_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


def signing_service(environ: dict[str, Any]) -> str | None:
    """The service name in a SigV4 Authorization header's credential scope."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    marker = "Credential="
    if marker not in auth:
        return None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[3].lower() if len(scope) >= 5 else None


def s3_operation(method: str, path: str, query: str, environ: dict[str, Any]) -> str:
    """A best guess at the S3 operation from the request line (for the call log only)."""
    params = parse_qs(query, keep_blank_values=True)
    has_key = path.strip("/").count("/") >= 1
    if "uploads" in params:
        return "CreateMultipartUpload" if method == "POST" else "ListMultipartUploads"
    if "uploadId" in params:
        return {
            "PUT": "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
        }.get(method, "ListParts")
    if "delete" in params:
        return "DeleteObjects"
    if method == "PUT" and has_key:
        return "CopyObject" if "HTTP_X_AMZ_COPY_SOURCE" in environ else "PutObject"
    if not has_key:
        bucket_ops = {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}
        if method == "GET":
            if path in ("", "/"):
                return "ListBuckets"
            return "ListObjectsV2" if "list-type" in params else "ListObjects"
        return bucket_ops.get(method, f"{method}Bucket")
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
        method, f"{method}Object"
    )


class CallLog:
    """Appends one JSON line per API call to `api-calls.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def record(self, service: str, operation: str, status: int) -> None:
        """Log one call."""
        line = json.dumps(
            {
                "time": round(time.time(), 3),
                "service": service,
                "operation": operation,
                "status": status,
            }
        )
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        """Close the log file."""
        with self._lock:
            self._file.close()


class CloudApp:
    """The WSGI application behind the local cloud's endpoint."""

    def __init__(
        self,
        batch: BatchApi,
        moto_app: WsgiApp,
        account_id: str,
        chaos: Chaos,
        calls: CallLog,
        on_efs: Callable[[], None],
    ) -> None:
        self._batch = batch
        self._moto = moto_app
        self._account_id = account_id
        self._chaos = chaos
        self._calls = calls
        self._on_efs = on_efs
        # moto's dispatcher finds a request's service anew each time (listing moto's package
        # directory, trying every service's URL patterns) under one global lock: about a quarter
        # of a HeadObject's time here. The signing service names the same moto app every time,
        # so it is asked once per service.
        self._apps: dict[str, WsgiApp] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request."""
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", ""))
        service = signing_service(environ)
        batch_op = self._batch.operation_for(path) if method == "POST" else None
        if service is None and batch_op is not None:
            service = "batch"
        service = service or "s3"
        if service == "batch":
            operation = batch_op or _batch_operation_names().get(path.rstrip("/").lower(), path)
        elif "HTTP_X_AMZ_TARGET" in environ:
            operation = str(environ["HTTP_X_AMZ_TARGET"]).rsplit(".", 1)[-1]
        elif service == "s3":
            operation = s3_operation(method, path, str(environ.get("QUERY_STRING", "")), environ)
        else:
            operation = rest_operation(service, method, path)

        if service == "s3" and self._chaos.slow_down_s3_call():
            _drain(environ)
            return self._reply(
                start_response, service, operation, 503, _S3_SLOWDOWN, "application/xml"
            )
        if service != "s3" and self._chaos.throttle_api_call():
            _drain(environ)
            error = TooManyRequests("Too Many Requests")
            return self._reply_error(start_response, service, operation, error)
        if service == "batch":
            return self._serve_batch(environ, start_response, batch_op, operation)
        return self._serve_moto(environ, start_response, service, operation)

    def _serve_batch(
        self, environ: dict[str, Any], start_response: StartResponse, op: str | None, name: str
    ) -> Iterable[bytes]:
        body = _drain(environ)
        if op is None:
            error = BatchApiError(
                f"The local cloud does not implement the Batch operation {name}; use AWS Batch "
                f"for it."
            )
            error.status, error.code = 400, "ClientException"
            return self._reply_error(start_response, "batch", name, error)
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            error = BatchApiError("The request body is not a JSON object.")
            error.status, error.code = 400, "SerializationException"
            return self._reply_error(start_response, "batch", op, error)
        try:
            response = self._batch.handle(op, request)
        except BatchApiError as exc:
            return self._reply_error(start_response, "batch", op, exc)
        except Exception:  # the endpoint keeps serving whatever one request does
            traceback.print_exc()
            return self._reply_error(
                start_response, "batch", op, BatchApiError("Internal error in the local cloud.")
            )
        payload = json.dumps(response).encode()
        return self._reply(start_response, "batch", op, 200, payload, "application/json")

    def _serve_moto(
        self, environ: dict[str, Any], start_response: StartResponse, service: str, name: str
    ) -> Iterable[bytes]:
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self._account_id
        if service == "elasticfilesystem":
            self._on_efs()
        answer = DIRECT_S3_ANSWERS.get(name) if service == "s3" else None
        if answer is not None:
            streamed = answer(environ, self._account_id)
            if streamed is not None:
                headers = [*streamed.headers, *_moto_extra_headers()]
                start_response(streamed.status, headers)
                self._calls.record(service, name, int(streamed.status.split()[0]))
                return streamed.body
        seen: list[int] = []

        def recording_start(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.append(int(status.split()[0]))
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        result = self._moto_app_for(service, environ)(environ, recording_start)
        self._calls.record(service, name, seen[0] if seen else 0)
        return result

    def _moto_app_for(self, service: str, environ: dict[str, Any]) -> WsgiApp:
        app = self._apps.get(service)
        if app is not None:
            return app
        resolve = getattr(self._moto, "get_application", None)
        if resolve is None:  # not moto's dispatcher: nothing to save
            return self._moto
        app = cast(WsgiApp, resolve(environ))
        self._apps[service] = app
        return app

    def _reply_error(
        self, start_response: StartResponse, service: str, op: str, error: BatchApiError
    ) -> Iterable[bytes]:
        payload = json.dumps({"__type": error.code, "message": error.message}).encode()
        return self._reply(
            start_response, service, op, error.status, payload, "application/json", error.code
        )

    def _reply(
        self,
        start_response: StartResponse,
        service: str,
        op: str,
        status: int,
        payload: bytes,
        content_type: str,
        error_type: str | None = None,
    ) -> Iterable[bytes]:
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", _request_id()),
        ]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        phrase = {
            200: "OK",
            400: "Bad Request",
            429: "Too Many Requests",
            500: "Internal Server Error",
            503: "Slow Down",
        }.get(status, "Error")
        start_response(f"{status} {phrase}", headers)
        self._calls.record(service, op, status)
        return [payload]


# Signing names that differ from botocore's model names.
_MODEL_NAMES = {"elasticfilesystem": "efs"}


@functools.cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation) of a REST service's botocore model, longest first."""
    import botocore.exceptions
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(_MODEL_NAMES.get(service, service))
    except botocore.exceptions.UnknownServiceError:
        return []
    if model.protocol not in ("rest-json", "rest-xml"):
        return []
    routes = []
    for op in model.operation_names:
        http = model.operation_model(op).http
        uri = str(http["requestUri"]).split("?", 1)[0]
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(uri))
        routes.append((str(http["method"]), re.compile(f"^{pattern}/?$"), op))
    return sorted(routes, key=lambda r: -len(r[1].pattern))


def rest_operation(service: str, method: str, path: str) -> str:
    """The operation of a REST request by its method and path (for the call log)."""
    for verb, pattern, name in _rest_routes(service):
        if verb == method and pattern.match(path):
            return name
    return f"{method} {path}"


@functools.cache
def _batch_operation_names() -> dict[str, str]:
    """Every Batch operation by request path, from botocore's model (to name unserved ones)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("batch")
    return {
        str(model.operation_model(name).http["requestUri"]).lower(): name
        for name in model.operation_names
    }


def _drain(environ: dict[str, Any]) -> bytes:
    """Read the whole request body (so that a keep-alive connection stays in step)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        data: bytes = stream.read(int(length))
        return data
    if environ.get("wsgi.input_terminated"):
        rest: bytes = stream.read()
        return rest
    return b""


# S3 requests the local cloud answers itself in their plain forms (each function returns None
# for the forms moto must answer).
DIRECT_S3_ANSWERS: dict[str, Callable[[dict[str, Any], str], Streamed | None]] = {
    "GetObject": stream_get_object,
    "HeadObject": answer_head,
    "HeadBucket": answer_head,
    "ListObjects": answer_list_objects,
}


def _moto_extra_headers() -> list[tuple[str, str]]:
    """Headers moto's server adds to every S3 answer, for a streamed one to match."""
    return [("x-amzn-requestid", _request_id()), ("access-control-allow-origin", "*")]


def _request_id() -> str:
    return str(jobspec.new_uuid())
