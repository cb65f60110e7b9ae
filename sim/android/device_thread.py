"""Run a VirtualDevice on its own event loop in a background thread.

Synchronous callers (pytest, the device farm, anything driving the device through the real
adb binary) need the device to keep serving while they block on subprocesses. Each device
gets its own loop and thread; `call()` runs a coroutine there (e.g. `device.open_reverse`)
and every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bubblescope.sim.android.virtual_device import VirtualDevice

logger = logging.getLogger(__name__)

T = TypeVar("T")
START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0


class DeviceThread:
    def __init__(self, device: VirtualDevice, host: str = "127.0.0.1", port: int = 0) -> None:
        self.device = device
        self.host = host
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"virtual-device-{device.serial_name}")
        self._stopped = False

    def __enter__(self) -> DeviceThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> DeviceThread:
        self._thread.start()
        try:
            self.port = self.call(self.device.start(self.host, self.port), timeout_s)
        except BaseException:
            self._halt_loop(timeout_s)
            raise
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = CALL_TIMEOUT_S) -> T:
        """Run `coro` on the device's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the device (every connection dropped), then its loop and thread."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.call(self.device.stop(), timeout_s)
        finally:
            self._halt_loop(timeout_s)

    def _halt_loop(self, timeout_s: float) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("device thread %s did not stop in %.0fs", self._thread.name,
                           timeout_s)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=5.0))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
