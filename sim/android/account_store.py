"""The simulated platform's server-side database of account state.

What a recommender has learned about an account lives on the platform's servers, not on the
phone: killing the app, or the whole virtual phone process, must not make the feed forget.
With a `state_dir` this store stands for that database: every change the app causes (feedback,
a recommendation drawn) is written to `<state_dir>/<platform>/<account>.json` atomically
(temporary file + rename, so a crash leaves the old or the new snapshot, never half of one)
and read back when the app logs in again, in this process or a later one. Without a
`state_dir` the state lives in memory for the life of the phone object.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

from bubblescope.sim.platform import AccountState, Platform

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


def _checked(kind: str, name: str) -> str:
    """Names become path components: refuse anything that could leave the state folder."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"{kind} name {name!r} cannot name a state file; "
                         "use letters, digits and _ . @ + -")
    return name


class AccountStore:
    """Accounts of one platform, by name: in memory, and on disk when given a folder."""

    def __init__(self, platform: Platform, platform_name: str,
                 state_dir: Path | None = None) -> None:
        self.platform = platform
        self.platform_name = _checked("platform", platform_name)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._live: dict[str, AccountState] = {}

    def path(self, account: str) -> Path | None:
        if self.state_dir is None:
            return None
        return self.state_dir / self.platform_name / f"{_checked('account', account)}.json"

    def login(self, account: str, seed: int) -> AccountState:
        """The account's state as the server holds it; a fresh account the first time. The
        same object while this store lives, so the app and sim hooks never hold two copies."""
        if account in self._live:  # this process already holds the newest state
            return self._live[account]
        path = self.path(account)
        if path is not None and path.exists():
            snapshot = json.loads(path.read_text(encoding="utf-8"))
            state = self.platform.restore(snapshot)
            log.debug("account %s restored from %s", account, path)
        else:
            state = self.platform.new_account(account, seed)
        self._live[account] = state
        return state

    def save(self, state: AccountState) -> None:
        """Persist after every change; a no-op beyond memory without a state_dir."""
        self._live[state.account] = state
        path = self.path(state.account)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.platform.snapshot(state), separators=(",", ":"))
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
