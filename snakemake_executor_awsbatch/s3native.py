"""Whole-object GETs sent by awscrt's S3 client (AWS's native client: signing, HTTP and retries in
C, on its own threads), for the small objects of a download.

Why: a GetObject through botocore costs this process 1.2-1.7 ms of CPU under the one interpreter
lock (building the request, a dozen event hooks, signing, parsing the 60-odd modeled headers and
the Last-Modified date), so 200 small objects came down at 31-35 MiB/s against s5cmd's 40-42 on
the development machine, with our client using a whole core. The same requests through awscrt's
S3 client, with our callbacks writing and hashing the body: 64-76 MiB/s (see docs/core.md).

The request is the one botocore would send: a GET of the URL botocore builds for the bucket
(virtual-hosted or path style, custom endpoint, FIPS or dual-stack), signed with SigV4 for `s3`
in the region botocore signs for, with the botocore client's own credentials (refreshed by
botocore). It asks for the first `threshold` bytes (`Range`), which is all of a small object
and the start of a large one, whose size the answer gives: those bytes are kept, and the large
object's ranges (`s3ranged.py`) start after them. The URL and region come, once
per bucket, from botocore's own signed GetObject of a probe key, answered in place of S3 before
it is sent.

This is an accelerator with botocore behind it: `NativeGets.for_client` returns None where it is
not the whole story (requests intercepted in-process, a proxy, TLS without verification,
unsigned requests), `endpoint` is None for a bucket whose requests are not plain SigV4 (SigV4a, S3
Express, Object Lambda), and `get` returns None for anything but a clean answer for an object we
uploaded or a small one whose ETag is its MD5 (see etag_md5): one without either, one whose ETag
does not match what arrived, a missing object, a bucket in another region, an error after the
client's own retries, a body that broke off, a stall. The caller then fetches
that object through botocore, with its redirects, retries and error messages.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from awscrt import auth, http, s3  # type: ignore[import-untyped]
from awscrt import io as crt_io
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from botocore.httpsession import get_cert_path

from snakemake_executor_awsbatch.checksums import ALGORITHMS, Hasher, combinable
from snakemake_executor_awsbatch.s3ranged import create_partial, write_at

log = logging.getLogger(__name__)
DISABLE_ENV = "AWSBATCH_S3_NATIVE"
_PROBE_KEY = "awsbatch-native-endpoint-probe"
_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
# A GET that stalls is cancelled and handed to botocore (whose read timeout is 60 s): the native
# client has no read timeout of its own.
_STALL_SECONDS = 60.0
_MIN_RATE = 1 << 20  # bytes per second a small object must at least arrive at
# The probes in flight, by probe key: each collects botocore's request for it (_answer_probe).
_PROBES: dict[str, list[Any]] = {}
_PROBES_LOCK = threading.Lock()
# The headers that say whether an ETag can be an MD5 (etag_md5), as botocore names them.
_ENCRYPTION_FIELDS = (
    ("x-amz-server-side-encryption", "ServerSideEncryption"),
    ("x-amz-server-side-encryption-customer-algorithm", "SSECustomerAlgorithm"),
)


@dataclass(frozen=True)
class Endpoint:
    """Where and how the GETs of one bucket go."""

    host: str  # the Host header (with a port when not the scheme's default)
    path_prefix: str  # the URL path before the (quoted) key
    region: str  # the region botocore signs for


@dataclass(frozen=True)
class Written:
    """A small object written to its `.part` file: the response's fields, the checksum."""

    response: dict[str, Any]  # ContentLength, ETag, Metadata, Checksum*, as botocore names them
    # Base64, of the algorithm the response's checksum uses; None for an object that is not
    # ours, which was checked here against its ETag (an MD5, see etag_md5) instead.
    checksum: str | None


@dataclass(frozen=True)
class TooLarge:
    """An object over the threshold, to be fetched in ranges after its first `kept` bytes.

    Those bytes (the answer to the GET, when it came whole) are in the `.part` file already,
    `kept_hasher` holding their checksum when the algorithm combines (CRC32C, CRC32); 0 when
    nothing was kept."""

    response: dict[str, Any]
    kept: int = 0
    kept_hasher: Hasher | None = None


def response_fields(headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The GetObject fields the download needs, named as botocore's parsed response names them."""
    lowered = {name.lower(): value for name, value in headers}
    # A ranged answer (206) gives the object's size after the slash of `Content-Range`.
    total = lowered.get("content-range", "").rpartition("/")[2]
    fields: dict[str, Any] = {
        "ContentLength": int(total if total.isdigit() else lowered.get("content-length", "-1")),
        "ETag": lowered.get("etag", ""),
        "Metadata": {
            name[len("x-amz-meta-") :]: value
            for name, value in lowered.items()
            if name.startswith("x-amz-meta-")
        },
    }
    for algorithm in ALGORITHMS:
        value = lowered.get(f"x-amz-checksum-{algorithm.lower()}")
        if value:
            fields[f"Checksum{algorithm}"] = value
    if "x-amz-checksum-type" in lowered:
        fields["ChecksumType"] = lowered["x-amz-checksum-type"]
    for header, name in _ENCRYPTION_FIELDS:
        if header in lowered:
            fields[name] = lowered[header]
    return fields


def etag_md5(response: dict[str, Any]) -> str | None:
    """The object's MD5 (hex) when its ETag is one, else None.

    S3 documents the ETag as the MD5 of the data for objects written in one request (PutObject,
    PostObject, CopyObject) in plain text or with SSE-S3; not for multipart uploads (`-N`),
    SSE-KMS, DSSE-KMS or SSE-C. S3-compatible stores may differ, so a mismatch is never taken
    for corruption on its own: the object is fetched again through botocore."""
    etag = str(response.get("ETag", "")).strip('"').lower()
    if len(etag) != 32 or any(c not in "0123456789abcdef" for c in etag):
        return None
    if response.get("ServerSideEncryption", "AES256") != "AES256":
        return None
    if response.get("SSECustomerAlgorithm"):
        return None
    return etag


class NativeGets:
    """GetObject of whole small objects through one awscrt S3 client; thread-safe."""

    def __init__(self, client: Any, credentials: Any, verify_path: str | None, retries: int):
        self._botocore = client
        self._credentials = credentials
        self._endpoints: dict[str, Endpoint | None] = {}
        self._probing: dict[str, threading.Lock] = {}  # one probe per bucket, others wait
        self._signing: dict[str, Any] = {}
        self._lock = threading.Lock()
        client.meta.events.register(
            "before-send.s3.GetObject", _answer_probe, unique_id="awsbatch-native-probe"
        )
        self._provider = auth.AwsCredentialsProvider.new_delegate(self._frozen)
        loops = crt_io.EventLoopGroup(min(4, os.cpu_count() or 1))
        tls = None
        if verify_path is not None:
            options = crt_io.TlsContextOptions()
            options.override_default_trust_store_from_path(None, verify_path)
            tls = crt_io.ClientTlsContext(options)
        self._s3 = s3.S3Client(
            bootstrap=crt_io.ClientBootstrap(loops, crt_io.DefaultHostResolver(loops)),
            region=str(client.meta.region_name or "us-east-1"),
            tls_mode=s3.S3RequestTlsMode.ENABLED if tls else s3.S3RequestTlsMode.DISABLED,
            tls_connection_options=tls.new_connection_options() if tls else None,
            credential_provider=self._provider,
            retry_config=s3.S3RetryConfig(max_retries=max(1, retries)),
            connect_timeout_ms=60_000,
            throughput_target_gbps=1.0,
        )

    @classmethod
    def for_client(
        cls, client: Any, retries: int, *, intercepted_ok: bool = False
    ) -> NativeGets | None:
        """The native path for this botocore S3 client, or None where only botocore is right.

        `intercepted_ok` skips the check for in-process interception (for tests, whose process
        has moto's handler on every client, mocking or not, while the local cloud they talk to
        listens on a socket)."""
        if os.environ.get(DISABLE_ENV) == "0" or any(os.environ.get(v) for v in _PROXY_ENV):
            return None
        if (_intercepted(client) and not intercepted_ok) or client.meta.config.proxies:
            return None
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        if credentials is None:  # unsigned requests (or a botocore that keeps them elsewhere)
            return None
        endpoint_url = str(client.meta.endpoint_url)
        verify = getattr(getattr(client, "_endpoint", None), "http_session", None)
        verify = getattr(verify, "_verify", None)
        if endpoint_url.startswith("https://"):
            if verify is False or verify is None:  # no verification: left to botocore
                return None
            # The CA bundle botocore verifies with (its default, or AWS_CA_BUNDLE and the like).
            return cls(client, credentials, str(get_cert_path(verify)), retries)
        return cls(client, credentials, None, retries)

    def _frozen(self) -> auth.AwsCredentials:
        frozen = self._credentials.get_frozen_credentials()
        return auth.AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    def endpoint(self, bucket: str) -> Endpoint | None:
        """The bucket's endpoint as botocore resolves it (once per bucket), or None when its
        requests are not plain SigV4 for `s3` (then botocore sends them)."""
        with self._lock:
            if bucket in self._endpoints:
                return self._endpoints[bucket]
            probing = self._probing.setdefault(bucket, threading.Lock())
        with probing:
            with self._lock:
                if bucket in self._endpoints:  # found while this thread waited
                    return self._endpoints[bucket]
            found = self._probe(bucket)
            with self._lock:
                self._endpoints[bucket] = found
            return found

    def _probe(self, bucket: str) -> Endpoint | None:
        # A GetObject of a probe key through the botocore client itself, caught before it is
        # sent (see _answer_probe): the URL and signature botocore makes for this bucket.
        probe = f"{_PROBE_KEY}-{uuid.uuid4().hex}"
        captured: list[Any] = []
        with _PROBES_LOCK:
            _PROBES[probe] = captured
        try:
            self._botocore.get_object(Bucket=bucket, Key=probe)
        except ClientError:
            pass  # the probe's stand-in answer is a 404
        finally:
            with _PROBES_LOCK:
                del _PROBES[probe]
        return _endpoint_from_request(captured[0], probe) if captured else None

    def _signing_config(self, region: str) -> Any:
        with self._lock:
            config = self._signing.get(region)
            if config is None:
                config = self._signing[region] = s3.create_default_s3_signing_config(
                    region=region, credential_provider=self._provider
                )
        return config

    def get(
        self,
        bucket: str,
        key: str,
        partial_path: str,
        threshold: int,
        algorithm_for: Callable[[dict[str, Any]], str | None],
    ) -> Written | TooLarge | None:
        """GET the whole object into `partial_path` when it is at most `threshold` bytes, or a
        larger one's first `threshold` bytes (TooLarge, the rest to be fetched in ranges).

        The checksum `algorithm_for(response fields)` names is computed while the body streams.
        An object for which it names none (not our upload: a ranged answer carries no S3
        checksum) is kept only when it is small and its ETag is an MD5 that matches (see
        etag_md5). None: botocore is to fetch this object (see the module's docstring)."""
        endpoint = self.endpoint(bucket)
        if endpoint is None:
            return None
        call = _Call(partial_path, threshold, algorithm_for)
        request = http.HttpRequest(
            "GET",
            endpoint.path_prefix + quote(key, safe="/~"),
            # At most `threshold` bytes: the whole of a small object, and a large one's first
            # bytes, kept for its ranges to start after, at a page-aligned offset (the native
            # client cannot drop a body it has begun to receive: a 256 MiB answer ran to its
            # end after a cancel). Content-Range gives the object's size either way.
            http.HttpHeaders([("Host", endpoint.host), ("Range", f"bytes=0-{threshold - 1}")]),
        )
        meta = self._s3.make_request(
            type=s3.S3RequestType.DEFAULT,
            operation_name="GetObject",
            request=request,
            signing_config=self._signing_config(endpoint.region),
            on_headers=call.on_headers,
            on_body=call.on_body,
        )
        call.started(meta)
        try:
            meta.finished_future.result(timeout=_STALL_SECONDS + threshold / _MIN_RATE)
        except concurrent.futures.TimeoutError:
            meta.cancel()
            call.fail("stalled")
            meta.finished_future.exception()  # wait until no callback can run any more
        except Exception as error:  # any failure hands the object to botocore
            call.fail(str(error))
        return call.outcome(f"s3://{bucket}/{key}")


class _Call:
    """One GET's state, fed by the native client's callbacks (in order, on its threads)."""

    def __init__(
        self,
        partial_path: str,
        threshold: int,
        algorithm_for: Callable[[dict[str, Any]], str | None],
    ) -> None:
        self.partial_path = partial_path
        self.threshold = threshold
        self.algorithm_for = algorithm_for
        self.response: dict[str, Any] | None = None
        self.large = False
        self.head_expected = 0  # a large object's first bytes this answer brings
        self.error: str | None = None
        self.received = 0
        self.hasher: Hasher | None = None
        # For a small object not ours: its ETag's MD5 (hex), and the MD5 of what arrives.
        self.md5_expected: str | None = None
        self.md5: Any = None
        self.fd: int | None = None
        self._meta: Any = None
        self._cancel_wanted = False
        self._lock = threading.Lock()

    def started(self, meta: Any) -> None:
        with self._lock:
            self._meta = meta
            cancel = self._cancel_wanted
        if cancel:
            meta.cancel()

    def _cancel(self) -> None:
        with self._lock:
            self._cancel_wanted = True
            meta = self._meta
        if meta is not None:
            meta.cancel()

    def on_headers(self, status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
        if status_code not in (200, 206):
            return  # the failure arrives in the future; botocore then fetches the object
        self.response = response_fields(headers)
        algorithm = self.algorithm_for(self.response)
        small = self.response["ContentLength"] <= self.threshold
        if algorithm is None and small:
            self.md5_expected = etag_md5(self.response)
        if self.md5_expected is not None:
            # Not our upload, but its ETag is an MD5: checked against it, in this one GET.
            self.md5 = hashlib.md5(usedforsecurity=False)
        elif algorithm is None:
            # Not our upload, nor an MD5 to check it by: S3's own checksum, if it has one, comes
            # only with a whole (unranged) GetObject, so botocore fetches the object to check
            # it; nothing is kept.
            self.fail("no checksum of ours to check it by")
            return
        elif not small:
            self.large = True
            if status_code != 206:
                return  # the Range was ignored: not a head to start the ranges after
            self.head_expected = self.threshold
            # The ranges' checksums combine with the head's; SHA256 is read back from disk.
            self.hasher = Hasher(algorithm) if combinable(algorithm) else None
        else:
            self.hasher = Hasher(algorithm)
        try:
            self.fd = create_partial(self.partial_path)
        except OSError as error:
            self.fail(f"cannot write {self.partial_path}: {error}")
            self._cancel()

    def on_body(self, chunk: Any, offset: int, **_: Any) -> None:
        if self.fd is None or self.error is not None:
            return
        if offset != self.received:  # a retry that delivers the body again, or a gap
            self.fail(f"body arrived at offset {offset}, expected {self.received}")
            self._cancel()
            return
        try:
            if self.hasher is not None:
                self.hasher.update(chunk)
            if self.md5 is not None:
                self.md5.update(chunk)
            write_at(self.fd, chunk, offset)
        except OSError as error:
            self.fail(f"cannot write {self.partial_path}: {error}")
            self._cancel()
            return
        self.received += len(chunk)

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason

    def outcome(self, uri: str) -> Written | TooLarge | None:
        if self.fd is not None:
            os.close(self.fd)
        if self.large and self.response is not None:
            if self.error is None and self.head_expected and self.received == self.head_expected:
                return TooLarge(self.response, self.received, self.hasher)
            self._discard()
            return TooLarge(self.response)
        complete = self.response is not None and self.received == self.response["ContentLength"]
        if self.error is None and not complete:
            self.error = "no complete answer"
        if self.error is None and self.md5 is not None and self.response is not None:
            if self.md5.hexdigest() == self.md5_expected:
                return Written(self.response, None)
            # A transfer gone wrong, or an ETag that is not an MD5 after all (some S3-compatible
            # stores): botocore fetches it again and checks it as it would any object.
            self.error = "ETag is not the MD5 of what arrived"
        if self.error is not None or self.response is None or self.hasher is None:
            log.debug("native GET of %s: %s; fetching it through botocore", uri, self.error)
            self._discard()
            return None
        return Written(self.response, self.hasher.b64digest())

    def _discard(self) -> None:
        """Remove the `.part` file this GET created, if it did."""
        if self.fd is not None and os.path.exists(self.partial_path):
            os.unlink(self.partial_path)


def _answer_probe(request: Any, **_: Any) -> AWSResponse | None:
    """`before-send` handler (one per client, whichever NativeGets registered it): keeps a
    probe's request and answers it 404 in place of S3; every other request goes on untouched."""
    name = urlsplit(str(request.url)).path.rpartition("/")[2]
    with _PROBES_LOCK:
        captured = _PROBES.get(name)
    if captured is None:
        return None
    captured.append(request)
    return AWSResponse(str(request.url), 404, HTTPHeaders(), _NoBody())


def _endpoint_from_request(request: Any, probe: str) -> Endpoint | None:
    """Host, path prefix and signing region of botocore's signed GET of the probe key, when it
    is plain SigV4 for `s3` (not SigV4a, an S3 Express session or S3 Object Lambda)."""
    parts = urlsplit(str(request.url))
    authorization = _text(request.headers.get("Authorization", ""))
    algorithm, _, rest = authorization.partition(" ")
    credential = rest.partition("Credential=")[2].partition(",")[0]
    scope = credential.split("/")
    if (
        algorithm != "AWS4-HMAC-SHA256"
        or len(scope) != 5
        or scope[3] != "s3"
        or "x-amz-s3session-token" in {str(name).lower() for name in request.headers}
        or not parts.path.endswith("/" + probe)
        or parts.scheme not in ("http", "https")
        or parts.query
    ):
        return None
    return Endpoint(host=parts.netloc, path_prefix=parts.path[: -len(probe)], region=scope[2])


def _text(value: str | bytes) -> str:
    """A header value as botocore keeps it (bytes once signed) as text."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _NoBody(io.BytesIO):
    """The raw body of the probe's stand-in answer (botocore reads it with `stream()`)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def _intercepted(client: Any) -> bool:
    """Whether something in this process answers the client's requests (moto's mock, the local
    cloud's in-process serving): a `before-send` handler. Those requests never reach a socket,
    so the native client would go somewhere else; unknown emitter internals count as yes."""
    emitter = getattr(client.meta.events, "_emitter", None)
    trie = getattr(emitter, "_handlers", None)
    search: Callable[[str], Any] | None = getattr(trie, "prefix_search", None)
    if search is None:
        return True
    return any(handler is not _answer_probe for handler in search("before-send.s3.GetObject"))
