"""Pacing and retrying AWS API calls: one token-bucket limiter per process, and jittered
exponential backoff on throttling (429) and server errors (5xx) only.

Every other error is raised at once: retrying a bad request only delays the message the user
needs to read.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
    }
)


class RateLimiter:
    """A thread-safe token bucket: at most `rate` calls a second, bursts up to `burst`."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; returns the time slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class BackoffPolicy:
    """Full-jitter exponential backoff: attempt n waits uniform(0, min(cap, base * 2**n))."""

    max_attempts: int = 8
    base_seconds: float = 0.25
    cap_seconds: float = 20.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number `attempt` (0-based)."""
        return rng.uniform(0.0, min(self.cap_seconds, self.base_seconds * (2**attempt)))


def is_retryable(error: BaseException) -> bool:
    """True for throttling (429 or a throttling code) and server (5xx) errors only."""
    if not isinstance(error, ClientError):
        return False
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code in THROTTLE_CODES or status == 429 or status >= 500


class Pacer:
    """Runs calls through one shared limiter, retrying throttles and 5xx with jittered backoff."""

    def __init__(
        self,
        limiter: RateLimiter,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.limiter = limiter
        self.backoff = backoff or BackoffPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.retries = 0

    def call(self, name: str, fn: Callable[[], T]) -> T:
        """Call `fn` under the limiter; retry only throttling and 5xx, up to the policy's bound."""
        attempt = 0
        while True:
            self.limiter.acquire()
            try:
                return fn()
            except ClientError as error:
                if not is_retryable(error) or attempt + 1 >= self.backoff.max_attempts:
                    raise
                wait = self.backoff.delay(attempt, self._rng)
                self.retries += 1
                log.debug("%s throttled or failed (%s); retrying in %.2fs", name, error, wait)
                self._sleep(wait)
                attempt += 1


_PROCESS_LIMITERS: dict[str, RateLimiter] = {}
_PROCESS_LOCK = threading.Lock()


def process_limiter(service: str, rate: float) -> RateLimiter:
    """The one limiter of this process for a service (Batch's quota is per account, so every
    client in the process must share it); the first caller's rate wins."""
    with _PROCESS_LOCK:
        limiter = _PROCESS_LIMITERS.get(service)
        if limiter is None:
            limiter = _PROCESS_LIMITERS[service] = RateLimiter(rate)
        return limiter
