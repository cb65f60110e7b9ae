"""The device's monotonic clock, as a recorder needs it: to stamp UI dumps in the same time
as getevent's touches and scrcpy's PTS, and to turn those times into UTC.

getevent timestamps and scrcpy PTS are both CLOCK_MONOTONIC on the device; the dataset wants
UTC. The offset between the device's wall clock and its monotonic clock,
`offset = epoch - monotonic`, is constant while the phone runs (short of an NTP step), so it
is estimated once, at the start, without anything but adb and the stream:

* read the device's wall clock with `date +%s.%N`, noting the host's monotonic time before
  and after (the midpoint is when the device read it, give or take half the round trip);
* every scrcpy packet is noted with its PTS and the host time it arrived. A packet captured at
  device monotonic time `pts` arrived `latency` later, so for each packet arriving near the
  clock reading, `epoch_at_arrival - pts = offset + latency`, where `epoch_at_arrival` is
  the clock reading moved to the packet's arrival with the device clock's rate;
* the least-delayed packet bounds the offset best: the estimate of a round is the minimum
  over its packets. As in NTP, the readings with the shortest round trips are trusted most:
  the offset is the median over the rounds whose round trip is within 1.5 times the
  shortest (a loaded host or adb server lengthens some readings, not all).

Error: the estimate is late by the smallest capture-to-host latency among the packets seen
(a few ms for the virtual phone; encoder + USB latency, ~10-30 ms, on a real phone), plus or
minus half the `date` round trip (reported as `read_uncertainty_s`). `/proc/uptime` is not
used: it is CLOCK_BOOTTIME (it includes time asleep) with 10 ms resolution, and the virtual
phone has none. Differences between device times (watch durations) do not depend on the
offset at all: they come from getevent's own timestamps.

`now()` gives the device's monotonic time from the host, anchored on the newest packets, so
it stays right over a long recording whatever the error of the measured clock rate.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bubblescope.devices.errors import DeviceError

ANCHOR_WINDOW_S = 1.0  # packets this recent anchor now()


@dataclass(frozen=True)
class OffsetEstimate:
    offset_s: float  # device epoch seconds minus device monotonic seconds
    rounds: int  # clock readings trusted (packets around them, a short round trip)
    read_uncertainty_s: float  # half the longest trusted `date` round trip, device seconds
    spread_s: float  # max - min of the trusted rounds' estimates


class StreamClock:
    def __init__(self, rate: float = 1.0, keep: int = 1024) -> None:
        self.rate = rate  # device seconds per host second (a virtual phone may warp time)
        self._arrivals: deque[tuple[float, int]] = deque(maxlen=keep)  # (host s, PTS us)
        self._lock = threading.Lock()
        self.estimate: OffsetEstimate | None = None

    def observe(self, pts_us: int | None, host: float | None = None) -> None:
        """A media packet with this PTS arrived now (config packets carry none)."""
        if pts_us is None:
            return
        with self._lock:
            self._arrivals.append((time.monotonic() if host is None else host, pts_us))

    def _near(self, start: float, end: float) -> list[tuple[float, int]]:
        with self._lock:
            return [a for a in self._arrivals if start <= a[0] <= end]

    def now(self) -> float:
        """Device monotonic seconds now (late by the stream's smallest recent latency)."""
        host = time.monotonic()
        with self._lock:
            recent = [a for a in self._arrivals if host - a[0] <= ANCHOR_WINDOW_S]
            recent = recent or list(self._arrivals)[-1:]
        if not recent:
            raise DeviceError("no scrcpy packet has arrived: the device's time is unknown")
        return max(pts / 1e6 + (host - arrived) * self.rate for arrived, pts in recent)

    def calibrate(self, read_epoch: Callable[[], float], rounds: int = 6,
                  settle_s: float = 0.15) -> OffsetEstimate:
        """Estimate the offset (see the module doc); raises when no packet came near any
        clock reading."""
        found = [r for r in (self._round(read_epoch, settle_s) for _ in range(rounds)) if r]
        if not found:
            raise DeviceError("no scrcpy packets arrived while reading the device clock")
        shortest = min(half_trip for _, half_trip in found)
        trusted = [r for r in found if r[1] <= 1.5 * shortest + 0.001]
        estimates = [estimate for estimate, _ in trusted]
        self.estimate = OffsetEstimate(statistics.median(estimates), len(trusted),
                                       max(half_trip for _, half_trip in trusted),
                                       max(estimates) - min(estimates))
        return self.estimate

    def _round(self, read_epoch: Callable[[], float],
               settle_s: float) -> tuple[float, float] | None:
        """One clock reading: (offset estimate, half its round trip), both device seconds;
        None when no packet arrived around it."""
        before = time.monotonic()
        epoch = read_epoch()
        after = time.monotonic()
        time.sleep(settle_s)  # let the packets arriving around the reading come in
        middle = (before + after) / 2
        near = self._near(before - settle_s, after + settle_s)
        if not near:
            return None
        return (min(epoch + (arrived - middle) * self.rate - pts / 1e6 for arrived, pts in near),
                (after - before) / 2 * self.rate)

    @property
    def offset(self) -> float:
        if self.estimate is None:
            raise DeviceError("the device clock is not calibrated yet")
        return self.estimate.offset_s

    def to_monotonic(self, event_time: float) -> float:
        """getevent time to device monotonic: a kernel that stamps input with the wall
        clock (no EVIOCSCLOCKID) shows epoch seconds, recognisable by their size."""
        return event_time - self.offset if event_time > 1e9 else event_time

    def utc(self, monotonic: float) -> datetime:
        return datetime.fromtimestamp(monotonic + self.offset, UTC)
