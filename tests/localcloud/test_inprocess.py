"""The in-process transport: this process's clients get the answers they would get over HTTP.

Three layers are checked. The WSGI environ the transport builds is compared, key for key, with
the one werkzeug's server builds for the same botocore request. Whole answers of the local cloud
are compared between a client on the socket and one served in-process. And the transport's own
rules: which requests it takes, a failing application, its removal when the cloud stops.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3.session
import botocore.handlers
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from snakemake_executor_awsbatch.localcloud.cloud import IN_PROCESS_VARIABLE, LocalCloud
from snakemake_executor_awsbatch.localcloud.inprocess import (
    EVENT,
    InProcessTransport,
    install,
    uninstall,
)

from .helpers import client, steady_headers

BUCKET = "localcloud-inprocess"
ODD_KEY = "dir/a key +ü%25&=.txt"
BIG = os.urandom(9 * 2**20)  # above boto3's 8 MiB multipart threshold, and its Expect header

# -- the environ, against werkzeug's -------------------------------------------------------------

# Keys that differ between any two requests or servers: the signature and its date, botocore's
# per-call ids, the address and port, and what only werkzeug adds about itself.
_VOLATILE_ENVIRON = {
    "HTTP_AUTHORIZATION",
    "HTTP_X_AMZ_DATE",
    "HTTP_AMZ_SDK_INVOCATION_ID",
    "HTTP_AMZ_SDK_REQUEST",
    "HTTP_HOST",
    "SERVER_PORT",
    "REMOTE_PORT",
    "SERVER_SOFTWARE",
}


class RecordingApp:
    """A WSGI app that keeps each request's plain environ values and body, and answers 200."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        kept = {
            k: v
            for k, v in environ.items()
            if isinstance(v, str)
            and not k.startswith(("wsgi.", "werkzeug."))
            and k not in _VOLATILE_ENVIRON
        }
        kept["body"] = body
        self.seen.append(kept)
        start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", "0")])
        return [b""]


def _s3(endpoint: str) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("head_object", {"Bucket": BUCKET, "Key": ODD_KEY}),
    ("put_object", {"Bucket": BUCKET, "Key": ODD_KEY, "Body": b"small", "Metadata": {"a": "b"}}),
    ("put_object", {"Bucket": BUCKET, "Key": "big.bin", "Body": BIG[: 2 * 2**20]}),
    ("get_object", {"Bucket": BUCKET, "Key": ODD_KEY, "Range": "bytes=1-3"}),
    ("list_objects_v2", {"Bucket": BUCKET, "Prefix": "dir/a key", "Delimiter": "/"}),
    ("delete_objects", {"Bucket": BUCKET, "Delete": {"Objects": [{"Key": ODD_KEY}]}}),
]


@pytest.mark.parametrize(("call", "params"), REQUESTS, ids=[c for c, _ in REQUESTS])
def test_environ_matches_werkzeugs(call: str, params: dict[str, Any]) -> None:
    over_http, in_process = RecordingApp(), RecordingApp()
    server = make_server("127.0.0.1", 0, over_http, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    transport = InProcessTransport(in_process, "http://127.0.0.1:1")
    served = _s3("http://127.0.0.1:1")
    served.meta.events.register_first(EVENT, transport)
    try:
        for s3 in (_s3(endpoint), served):
            # An empty 200 is not every operation's answer: only the request is compared.
            with contextlib.suppress(ClientError):
                getattr(s3, call)(**params)
    finally:
        server.shutdown()
        server.server_close()
    assert len(over_http.seen) == 1 and len(in_process.seen) == 1
    assert in_process.seen[0] == over_http.seen[0]


# -- whole answers, socket against in-process ----------------------------------------------------


@pytest.fixture(scope="module")
def clients(local_cloud: LocalCloud) -> Iterator[tuple[Any, Any]]:
    """(a client on the socket, one served in-process) for S3, with a bucket to read."""
    over_http = client(local_cloud, "s3")
    local_cloud.serve_in_process()
    in_process = client(local_cloud, "s3")
    over_http.create_bucket(Bucket=BUCKET)
    over_http.put_object(Bucket=BUCKET, Key=ODD_KEY, Body=b"odd name", Metadata={"who": "t"})
    over_http.put_object(Bucket=BUCKET, Key="crc.bin", Body=b"x" * 77, ChecksumAlgorithm="CRC32C")
    for i in range(5):
        over_http.put_object(Bucket=BUCKET, Key=f"many/{i}.txt", Body=str(i).encode())
    yield over_http, in_process


# Headers werkzeug's server adds on its own, not the application's: no socket, no such headers.
_SERVER_HEADERS = frozenset({"server", "connection"})


def _answer(s3: Any, call: str, params: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    try:
        response = getattr(s3, call)(**params)
    except ClientError as error:
        response = error.response
    meta = response.pop("ResponseMetadata")
    if "Body" in response:
        response["Body"] = response["Body"].read()
    headers = {k: v for k, v in steady_headers(meta).items() if k not in _SERVER_HEADERS}
    return int(meta["HTTPStatusCode"]), headers, response


READS: list[tuple[str, dict[str, Any]]] = [
    ("head_object", {"Bucket": BUCKET, "Key": ODD_KEY}),
    ("head_object", {"Bucket": BUCKET, "Key": "missing"}),
    ("head_bucket", {"Bucket": "no-such-bucket-inprocess"}),
    ("get_object", {"Bucket": BUCKET, "Key": ODD_KEY}),
    ("get_object", {"Bucket": BUCKET, "Key": "crc.bin", "ChecksumMode": "ENABLED"}),
    ("get_object", {"Bucket": BUCKET, "Key": "crc.bin", "Range": "bytes=70-"}),
    ("get_object", {"Bucket": BUCKET, "Key": "missing"}),
    ("list_objects", {"Bucket": BUCKET, "Prefix": "many/"}),
    ("list_objects_v2", {"Bucket": BUCKET, "Prefix": "dir/a key", "MaxKeys": 1}),
    ("list_objects_v2", {"Bucket": BUCKET, "Delimiter": "/"}),
]


@pytest.mark.parametrize(("call", "params"), READS, ids=[c for c, _ in READS])
def test_answers_match_the_sockets(
    clients: tuple[Any, Any], call: str, params: dict[str, Any]
) -> None:
    over_http, in_process = clients
    assert _answer(in_process, call, params) == _answer(over_http, call, params)


def test_writes_are_seen_by_the_other_client(clients: tuple[Any, Any], tmp_path: Any) -> None:
    over_http, in_process = clients
    in_process.put_object(Bucket=BUCKET, Key="w/one", Body=b"1", ChecksumAlgorithm="SHA256")
    assert over_http.get_object(Bucket=BUCKET, Key="w/one")["Body"].read() == b"1"
    source = tmp_path / "big.bin"
    source.write_bytes(BIG)
    in_process.upload_file(str(source), BUCKET, "w/big.bin")  # multipart, in threads
    head = over_http.head_object(Bucket=BUCKET, Key="w/big.bin")
    assert head["ContentLength"] == len(BIG) and head["ETag"].endswith('-2"')
    in_process.download_file(BUCKET, "w/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == BIG
    source_object = {"Bucket": BUCKET, "Key": ODD_KEY}
    in_process.copy_object(Bucket=BUCKET, Key="w/copy", CopySource=source_object)
    in_process.delete_object(Bucket=BUCKET, Key="w/one")
    keys = {o["Key"] for o in over_http.list_objects_v2(Bucket=BUCKET, Prefix="w/")["Contents"]}
    assert keys == {"w/big.bin", "w/copy"}


def test_batch_and_logs_are_served_too(local_cloud: LocalCloud, clients: tuple[Any, Any]) -> None:
    before = local_cloud.in_process_calls
    queues = client(local_cloud, "batch").describe_job_queues()["jobQueues"]
    assert local_cloud.queue_name in {q["jobQueueName"] for q in queues}
    logs = client(local_cloud, "logs")
    logs.create_log_group(logGroupName="/inprocess/test")
    groups = logs.describe_log_groups(logGroupNamePrefix="/inprocess/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/inprocess/test"]
    assert local_cloud.in_process_calls == before + 3


def test_only_clients_made_after_are_served(
    local_cloud: LocalCloud, clients: tuple[Any, Any]
) -> None:
    over_http, in_process = clients
    before = local_cloud.in_process_calls
    over_http.head_bucket(Bucket=BUCKET)
    assert local_cloud.in_process_calls == before
    in_process.head_bucket(Bucket=BUCKET)
    assert local_cloud.in_process_calls == before + 1


# -- the transport's own rules ---------------------------------------------------------------------


def _request(url: str) -> AWSPreparedRequest:
    return AWSPreparedRequest("GET", url, {"Host": "x"}, b"", stream_output=False)


def test_other_endpoints_are_left_to_http() -> None:
    transport = InProcessTransport(RecordingApp(), "http://127.0.0.1:4566")
    assert transport(_request("http://127.0.0.1:4567/b/k")) is None
    assert transport(_request("https://127.0.0.1:4566/b/k")) is None
    assert transport(_request("https://s3.us-east-1.amazonaws.com/b/k")) is None
    assert transport(_request("http://127.0.0.1:4566/b/k")) is not None
    assert transport.served == 1


def test_a_failing_application_is_a_500_not_a_crash(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("boom")

    response = InProcessTransport(broken, "http://127.0.0.1:4566")(
        _request("http://127.0.0.1:4566/b/k")
    )
    assert response is not None and response.status_code == 500
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_a_generator_application_starts_its_response_late() -> None:
    closed: list[bool] = []

    class Lazy:
        def __init__(self, start_response: Callable[..., Any]) -> None:
            self._start = start_response

        def __iter__(self) -> Iterator[bytes]:
            self._start("201 Created", [("X-One", "a"), ("X-One", "b")])
            yield b"ab"
            yield b"cd"

        def close(self) -> None:
            closed.append(True)

    transport = InProcessTransport(lambda e, s: Lazy(s), "http://127.0.0.1:4566")
    response = transport(_request("http://127.0.0.1:4566/b/k"))
    assert response is not None
    assert (response.status_code, response.headers["x-one"]) == (201, "a, b")
    assert response.raw.read(3) == b"abc" and response.raw.read() == b"d"
    response.raw.close()
    assert closed == [True]


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", "404 Not Found"), ("GET", "304 Not Modified")]
)
def test_no_body_where_http_has_none(method: str, status: str) -> None:
    def talkative(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, [("Content-Length", "5")])
        return [b"<Err>"]

    request = AWSPreparedRequest(method, "http://127.0.0.1:4566/b/k", {}, b"", stream_output=False)
    response = InProcessTransport(talkative, "http://127.0.0.1:4566")(request)
    assert response is not None and response.content == b""
    get = AWSPreparedRequest("GET", "http://127.0.0.1:4566/b/k", {}, b"", stream_output=False)
    if status.startswith("404"):  # the same answer to a GET keeps its body
        answer = InProcessTransport(talkative, "http://127.0.0.1:4566")(get)
        assert answer is not None and answer.content == b"<Err>"


def test_install_reaches_new_sessions_and_uninstall_removes_it() -> None:
    transport = InProcessTransport(RecordingApp(), "http://127.0.0.1:1")
    install(transport)
    try:
        assert (EVENT, transport) in botocore.handlers.BUILTIN_HANDLERS
        served = _s3("http://127.0.0.1:1")
        served.list_buckets()  # the recording app's empty 200 parses as no buckets
        assert transport.served == 1
    finally:
        uninstall(transport)
    assert all(entry[1] is not transport for entry in botocore.handlers.BUILTIN_HANDLERS)
    with pytest.raises(Exception, match="Could not connect"):
        served.list_buckets()  # the handler stays on the client but passes requests on
    assert transport.served == 1


def test_stop_uninstalls_and_the_variable_turns_it_off(
    local_cloud_factory: Callable[..., LocalCloud], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = local_cloud_factory()
    cloud.serve_in_process()
    client(cloud, "s3").list_buckets()
    assert cloud.in_process_calls == 1
    cloud.stop()
    assert all(
        not isinstance(entry[1], InProcessTransport) or entry[1] is not cloud._in_process
        for entry in botocore.handlers.BUILTIN_HANDLERS
    )
    monkeypatch.setenv(IN_PROCESS_VARIABLE, "0")
    off = local_cloud_factory()
    off.serve_in_process()
    client(off, "s3").list_buckets()
    assert off.in_process_calls == 0
