"""Reading a Batch job's log from CloudWatch Logs (/aws/batch/job), all pages."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from snakemake_executor_awsbatch.ratelimit import Pacer

LOG_GROUP = "/aws/batch/job"


def read_log_stream(
    client: Any,
    stream: str,
    *,
    pacer: Pacer,
    group: str = LOG_GROUP,
    max_lines: int | None = None,
) -> list[str]:
    """The messages of one log stream, oldest first; the last `max_lines` when given.

    GetLogEvents pages forward until the token stops changing (CloudWatch's end-of-stream
    signal). A missing group or stream gives an empty list: a job that never started has none.
    """
    lines: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token:
            kwargs["nextToken"] = token
        try:
            page = pacer.call("GetLogEvents", lambda kw=kwargs: client.get_log_events(**kw))  # type: ignore[misc]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return lines
            raise
        lines.extend(str(e.get("message", "")) for e in page.get("events", []))
        if max_lines is not None and len(lines) > 4 * max_lines:
            del lines[: len(lines) - max_lines]
        new_token = page.get("nextForwardToken")
        if not new_token or new_token == token:
            break
        token = new_token
    return lines[-max_lines:] if max_lines is not None else lines
