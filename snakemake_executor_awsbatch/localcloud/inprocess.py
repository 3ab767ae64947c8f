"""The in-process transport: AWS clients in the cloud's own process reach it without a socket.

With `--awsbatch-local` the local cloud runs inside Snakemake's process, and that process makes
most of a run's AWS calls: the S3 storage plugin's existence, size and time checks between jobs
(about 600 for the germline workflow), and the executor's Batch and S3 calls. Over the loopback
socket each cost 1.4-2.0 ms; about two thirds of that was HTTP itself (a new connection per
request, werkzeug parsing it on the server thread, urllib3 parsing the answer). Handed to the
cloud's WSGI application directly they cost 0.5-0.7 ms.

botocore offers the hook for this: a `before-send` handler that returns a response takes the
place of the HTTP send (moto's own in-memory mocking works the same way). Everything before
the send still happens, so requests are built, validated and signed exactly as for AWS, and
the cloud's application (its call log, its chaos, its direct S3 answers, moto) sees the same
request it would have read from the socket. Only requests for this cloud's endpoint are taken;
any other endpoint, and every client in another process (launcher jobs), still goes over HTTP.
"""

from __future__ import annotations

import io
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast
from urllib.parse import unquote_to_bytes, urlsplit

import boto3
import botocore.handlers
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict

from snakemake_executor_awsbatch.localcloud.server import WsgiApp

EVENT = "before-send"
# Request framing the WSGI server resolves itself: the application gets CONTENT_LENGTH instead.
_TRANSPORT_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Responses without a body by definition (RFC 9110): 1xx, 204 No Content, 304 Not Modified.
_BODYLESS_STATUSES = frozenset({*range(100, 200), 204, 304})


class WsgiBody(io.RawIOBase):
    """A response body read lazily from a WSGI application's iterable, as urllib3's would be."""

    def __init__(self, chunks: Iterable[bytes], source: Iterable[bytes] | None = None) -> None:
        """`source`: the application's own iterable when `chunks` wraps it (closed at the end)."""
        super().__init__()
        self._source = chunks if source is None else source
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # As urllib3's read: `size` bytes unless the body ends first; None (botocore's
        # StreamingBody.read()) or a negative size for all of it.
        if size is None or size < 0:
            return self.readall()
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            part = super().read(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = bytes(chunk)
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """What botocore's `AWSResponse.content` asks of a raw response."""
        while True:
            data = self.read(amt)
            if not data:
                return
            yield data

    def close(self) -> None:
        # WSGI: the server calls close() on the iterable once it is done with it.
        closer = getattr(self._source, "close", None)
        if closer is not None and not self.closed:
            closer()
        super().close()


class InProcessTransport:
    """A `before-send` handler that serves requests for `endpoint_url` with `app` in-process."""

    def __init__(self, app: WsgiApp, endpoint_url: str) -> None:
        parts = urlsplit(endpoint_url)
        self._app = app
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._host = parts.hostname or "127.0.0.1"
        self._port = str(parts.port or (443 if parts.scheme == "https" else 80))
        self._enabled = True
        self.served = 0
        self._count_lock = threading.Lock()

    def disable(self) -> None:
        """Stop taking requests (clients made meanwhile keep the handler; it passes them on)."""
        self._enabled = False

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if not self._enabled:
            return None
        url = urlsplit(request.url)
        if url.netloc != self._netloc or url.scheme != self._scheme:
            return None
        status, headers, body = self._serve(request, url.path, url.query)
        with self._count_lock:
            self.served += 1
        # AWSResponse keeps any mapping as a HeadersDict; the stubs ask for http.client's type.
        return AWSResponse(request.url, status, cast(Any, headers), body)

    def _serve(
        self, request: AWSPreparedRequest, raw_path: str, query: str
    ) -> tuple[int, HeadersDict, WsgiBody]:
        payload = _body_bytes(request.body)
        environ = self._environ(request, raw_path, query, payload)
        started: list[tuple[int, HeadersDict]] = []

        def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
            started[:] = [(int(status.split()[0]), _headers(headers))]
            return lambda data: None  # the legacy write() callable; nothing here uses it

        try:
            result = self._app(environ, start_response)
            chunks: Iterable[bytes] = result
            if not started:
                # A generator may call start_response only when it is first advanced.
                iterator = iter(result)
                chunks = _prepend(next(iterator, b""), iterator)
            if not started:
                raise RuntimeError("the WSGI application gave a body without a status")
        except Exception:  # as werkzeug's server does: the request fails, the cloud goes on
            traceback.print_exc()
            return 500, HeadersDict({"Content-Length": "0"}), WsgiBody([])
        status, headers = started[0]
        if request.method == "HEAD" or status in _BODYLESS_STATUSES:
            # An HTTP client reads no body for these whatever the server sends (http.client
            # does the same): the application's bytes, if any, stay unread.
            chunks = ()
        return status, headers, WsgiBody(chunks, source=result)

    def _environ(
        self, request: AWSPreparedRequest, raw_path: str, query: str, payload: bytes
    ) -> dict[str, Any]:
        # As werkzeug's server builds it: PATH_INFO percent-decoded and read as latin-1 (PEP
        # 3333), the raw target kept in REQUEST_URI/RAW_URI, headers as HTTP_* variables.
        target = raw_path + (f"?{query}" if query else "")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": target,
            "RAW_URI": target,
            "SERVER_NAME": self._host,
            "SERVER_PORT": self._port,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "0",
            "HTTP_HOST": self._netloc,
            # http.client sends this when the caller does not (botocore does not).
            "HTTP_ACCEPT_ENCODING": "identity",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self._scheme,
            "wsgi.input": io.BytesIO(payload),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if payload or "Content-Length" in request.headers:
            environ["CONTENT_LENGTH"] = str(len(payload))
        for name, value in request.headers.items():
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            key = name.upper().replace("-", "_")
            if name.lower() in _TRANSPORT_HEADERS:
                continue
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = text
            else:
                environ[f"HTTP_{key}"] = text
        return environ


def _body_bytes(body: Any) -> bytes:
    """The request body as bytes, read whole as werkzeug would have received it."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    data = body.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _headers(pairs: list[tuple[str, str]]) -> HeadersDict:
    """Response headers as urllib3 presents them: repeated names joined with ', '."""
    headers = HeadersDict()
    for name, value in pairs:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def install(transport: InProcessTransport) -> None:
    """Serve every client made from now on in this process.

    botocore copies its built-in handlers into each new session and each session's handlers into
    each new client, so a client made before this call goes on using HTTP. boto3's default
    session, if it exists already, gets the handler too: the clients it makes later (Snakemake's
    S3 storage plugin makes its own there) are served.
    """
    botocore.handlers.BUILTIN_HANDLERS.append((EVENT, transport))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(EVENT, _as_handler(transport))


def uninstall(transport: InProcessTransport) -> None:
    """Stop serving: new sessions no longer get the handler, existing ones pass requests on."""
    transport.disable()
    handlers = botocore.handlers.BUILTIN_HANDLERS
    handlers[:] = [entry for entry in handlers if entry[1] is not transport]
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.unregister(EVENT, _as_handler(transport))


def _as_handler(transport: InProcessTransport) -> Callable[..., None]:
    # The stubs type event handlers as returning None; a before-send handler returns a response.
    return cast(Callable[..., None], transport)
