"""Fault injection for the local cloud: spot reclaims, Batch API throttling and S3 SlowDown.

SPEC grammar: comma-separated `key=value` pairs, for example
`spot=0.1,throttle=0.05,s3_slowdown=0.02,seed=7`.

- `spot=P`: each running attempt is reclaimed with probability P (0..1), at a random moment within
  `spot_window` seconds (default 1.0) of its start; `spot_max=N` caps the number of reclaims.
- `throttle=P`: each Batch or CloudWatch Logs call is answered 429 TooManyRequestsException with
  probability P; `throttle_max=N` caps the count.
- `s3_slowdown=P`: each S3 call is answered 503 SlowDown with probability P; `s3_slowdown_max=N`
  caps the count.
- `seed=N`: the random seed (default 0), so that a run can be repeated.

`spot=1.0,spot_max=1` reclaims exactly the first attempt that runs long enough to be reclaimed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from snakemake_executor_awsbatch.errors import UserError

_RATES = ("spot", "throttle", "s3_slowdown")
_COUNTS = ("spot_max", "throttle_max", "s3_slowdown_max", "seed")


@dataclass(frozen=True)
class ChaosSpec:
    """Parsed fault-injection settings; every rate 0 means no faults."""

    spot: float = 0.0
    spot_max: int | None = None
    spot_window: float = 1.0
    throttle: float = 0.0
    throttle_max: int | None = None
    s3_slowdown: float = 0.0
    s3_slowdown_max: int | None = None
    seed: int = 0

    @classmethod
    def parse(cls, text: str | None) -> ChaosSpec:
        """Parse a SPEC string such as `spot=0.1,throttle=0.05,seed=7` (None or "" -> no faults)."""
        values: dict[str, float | int] = {}
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in (*_RATES, *_COUNTS, "spot_window"):
                raise UserError(
                    f"Chaos setting {item!r} is not understood; use key=value pairs with keys "
                    f"{', '.join((*_RATES, *_COUNTS, 'spot_window'))}."
                )
            try:
                number: float | int = int(raw) if key in _COUNTS else float(raw)
            except ValueError:
                raise UserError(
                    f"Chaos setting {key} has value {raw!r}, which is not a number; give a number."
                ) from None
            if key in _RATES and not 0.0 <= float(number) <= 1.0:
                raise UserError(f"Chaos rate {key}={raw} is outside 0..1; give a fraction.")
            if number < 0:
                raise UserError(f"Chaos setting {key}={raw} is negative; give a value >= 0.")
            values[key] = number
        return cls(**values)  # type: ignore[arg-type]

    @property
    def enabled(self) -> bool:
        """True when any fault can be injected."""
        return self.spot > 0 or self.throttle > 0 or self.s3_slowdown > 0


class Chaos:
    """Seeded, thread-safe decisions about which calls and attempts to disturb."""

    def __init__(self, spec: ChaosSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._lock = threading.Lock()
        self._counts = {"spot": 0, "throttle": 0, "s3_slowdown": 0}

    def _draw(self, kind: str, rate: float, limit: int | None) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            if limit is not None and self._counts[kind] >= limit:
                return False
            hit = self._rng.random() < rate
            if hit:
                self._counts[kind] += 1
            return hit

    def throttle_api_call(self) -> bool:
        """Whether to answer this Batch/Logs call with 429."""
        return self._draw("throttle", self.spec.throttle, self.spec.throttle_max)

    def slow_down_s3_call(self) -> bool:
        """Whether to answer this S3 call with 503 SlowDown."""
        return self._draw("s3_slowdown", self.spec.s3_slowdown, self.spec.s3_slowdown_max)

    def spot_reclaim_delay(self) -> float | None:
        """Seconds after start at which to reclaim a new attempt, or None to let it run."""
        if not self._draw("spot", self.spec.spot, self.spec.spot_max):
            return None
        with self._lock:
            return self._rng.random() * self.spec.spot_window

    def release_spot(self) -> None:
        """Give back a reclaim that did not happen because the attempt ended first."""
        with self._lock:
            self._counts["spot"] = max(0, self._counts["spot"] - 1)
