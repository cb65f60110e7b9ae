"""Progress of a running job: a bar on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_EVERY_S = 10.0


class Progress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.bar: tqdm | None = None
        self.last_line = 0.0

    def _postfix(self, stats: dict) -> str:
        devices = stats.get("devices", {}).values()
        running = sum(d["state"] == "running" for d in devices)
        restarts = sum(d["restarts"] for d in devices)
        text = f"runs {stats['runs_done']}/{stats['runs_total']}, devices {running} busy"
        if restarts:
            text += f", {restarts} restarts"
        if stats.get("runs_failed"):
            text += f", {stats['runs_failed']} failed"
        return text

    def update(self, stats: dict | None) -> None:
        if not self.enabled or not stats:
            return
        if self.tty:
            if self.bar is None:
                self.bar = tqdm(total=stats["steps_total"], unit="step", dynamic_ncols=True,
                                desc=stats["job_id"], file=sys.stderr)
            self.bar.n = stats["steps_done"]
            self.bar.set_postfix_str(self._postfix(stats), refresh=False)
            self.bar.refresh()
            return
        now = time.monotonic()
        if now - self.last_line >= LOG_EVERY_S or stats.get("state") in ("done", "stopped"):
            self.last_line = now
            print(f"[{stats['job_id']}] {stats['steps_done']}/{stats['steps_total']} steps, "
                  f"{self._postfix(stats)}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
