"""The device's clock as seen from the host: offset and rate, from `date +%s.%N` samples.

A virtual device may run faster than real time (a time-warp factor); a real phone runs at
rate 1 with its own offset. The driver only reads the device clock, so the same code waits
the right amount of real time in both cases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bubblescope.devices.errors import DeviceError

SAMPLE_GAP_S = 0.25  # real seconds between the two samples that give the rate


@dataclass
class DeviceClock:
    read: Callable[[], float]  # one reading of the device's epoch seconds
    origin_device: float = 0.0
    origin_host: float = 0.0
    rate: float = 1.0  # device seconds per host second

    def sync(self) -> DeviceClock:
        first_host, first = self._sample()
        time.sleep(SAMPLE_GAP_S)
        second_host, second = self._sample()
        rate = (second - first) / (second_host - first_host)
        if not 0.01 < rate < 10_000:
            raise DeviceError(f"device clock runs at {rate:.3g}x host time; check the device")
        self.rate, self.origin_device, self.origin_host = rate, second, second_host
        return self

    def _sample(self) -> tuple[float, float]:
        before = time.monotonic()
        device = self.read()
        after = time.monotonic()
        return (before + after) / 2, device

    def now(self) -> float:
        return self.origin_device + (time.monotonic() - self.origin_host) * self.rate

    def sleep(self, device_seconds: float) -> None:
        if device_seconds > 0:
            time.sleep(device_seconds / self.rate)

    def sleep_until(self, device_time: float) -> None:
        self.sleep(device_time - self.now())
