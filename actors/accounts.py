"""The farm's account inventory: which platform accounts exist, on which phone, in which state.

Accounts are data kept with the farm, never a side effect of a job. The operator writes the
account file (YAML: id, platform, phone, and at most a *reference* to credentials, such as
`secret:NAME/KEY` or `file:/path/on/the/device/node`); beside it an append-only ledger
(`<file>.ledger.jsonl`) records every change of state, one JSON line each:

    fresh -> in-use (by one job's run) -> cultivated -> retired

An account's state is the fold of its ledger lines. Allocation holds an exclusive lock on the
ledger while it reads the fold and appends, so two coordinators (or two jobs) never hand out
one fresh account twice. Replaying a transition already recorded (a restarted coordinator)
is a no-op; any other illegal transition is refused. Virtual phones, whose app logs into any
account, mint fresh accounts on demand instead of drawing from the file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bubblescope.actors.errors import AccountFileError, AccountStateError, NotEnoughFreshAccounts
from bubblescope.config_files import read_mapping

log = logging.getLogger(__name__)

State = Literal["fresh", "in-use", "cultivated", "retired"]
NEXT: dict[str, set[str]] = {"fresh": {"in-use", "retired"}, "in-use": {"cultivated", "retired"},
                             "cultivated": {"retired"}, "retired": set()}
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"


class AccountEntry(BaseModel):
    """One account as the operator declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="the account's name on the platform")
    platform: str = Field(min_length=1, description="platform profile or app it belongs to")
    phone: str = Field(min_length=1, description="serial of the phone logged into it")
    credentials: str | None = Field(
        default=None, pattern=r"^(secret|file):\S+$",
        description="where its credentials are (secret:NAME/KEY or file:PATH on the device "
        "node); never the credentials themselves")


class AccountFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: list[AccountEntry] = Field(default_factory=list)

    @field_validator("accounts")
    @classmethod
    def _unique(cls, accounts: list[AccountEntry]) -> list[AccountEntry]:
        twice = [name for name, n in Counter(a.id for a in accounts).items() if n > 1]
        if twice:
            raise ValueError(f"account {twice[0]!r} is listed twice; give each account one entry")
        return accounts


@dataclass
class Account:
    id: str
    platform: str
    phone: str
    state: str = "fresh"
    job_id: str = ""
    run_id: str = ""
    runs: list[str] = field(default_factory=list)  # "job/run" it served, oldest first
    minted: bool = False


@dataclass(frozen=True)
class Need:
    """A run that needs an account: fresh unless it already holds one."""

    run_id: str
    platform: str


class AccountInventory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.ledger = path.with_name(path.name + ".ledger.jsonl")

    # -- reading -----------------------------------------------------------------------
    def declared(self) -> list[AccountEntry]:
        if not self.path.exists():
            raise AccountFileError(f"{self.path}: no account file; write one (accounts: [{{id, "
                                   "platform, phone}}]) or `bubblescope accounts add`")
        data = read_mapping(self.path, AccountFileError, "account file")
        try:
            return AccountFile.model_validate(data).accounts
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(part) for part in error["loc"])
            raise AccountFileError(error["msg"], source=str(self.path), key=key) from None

    def accounts(self) -> dict[str, Account]:
        """Every account, declared or minted, in the state its ledger says."""
        found = {e.id: Account(e.id, e.platform, e.phone) for e in self.declared()} \
            if self.path.exists() else {}
        for line in self._lines():
            if line["to"] == "created":
                found.setdefault(line["account"], Account(line["account"], line["platform"],
                                                          line["phone"], minted=True))
                continue
            account = found.get(line["account"])
            if account is None:
                continue  # dropped from the file: its history stays in the ledger
            account.state = line["to"]
            account.job_id, account.run_id = line.get("job", ""), line.get("run", "")
            if line["to"] == "in-use":
                account.runs.append(f"{account.job_id}/{account.run_id}")
        return found

    def _lines(self) -> Iterator[dict]:
        if not self.ledger.exists():
            return
        lines = self.ledger.read_text("utf-8").splitlines()
        for number, text in enumerate(lines, 1):
            try:
                yield json.loads(text)
            except json.JSONDecodeError:
                if number == len(lines):  # a torn last line: a crash mid-append
                    log.warning("%s: ignoring a torn last line", self.ledger)
                    continue
                raise AccountFileError(f"{self.ledger}:{number}: not a ledger line; restore "
                                       "the ledger from its backup") from None

    # -- changing ----------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(self.ledger, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _append(self, lines: list[dict]) -> None:
        at = datetime.now(UTC).isoformat()
        with open(self.ledger, "a", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps({**line, "at": at}, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _move(self, account: Account, to: str, job_id: str = "", run_id: str = "") -> dict:
        if to not in NEXT[account.state]:
            raise AccountStateError(f"account {account.id} is {account.state}"
                                    f"{f' (job {account.job_id})' if account.job_id else ''}; "
                                    f"it cannot become {to}")
        return {"account": account.id, "from": account.state, "to": to, "job": job_id,
                "run": run_id}

    def allocate(self, job_id: str, needs: list[Need]) -> dict[str, Account]:
        """A fresh account for every run, or none at all: the runs that already hold one
        (a resumed job) keep it; NotEnoughFreshAccounts names both numbers per platform."""
        with self._locked():
            accounts = self.accounts()
            held = {a.run_id: a for a in accounts.values()
                    if a.state == "in-use" and a.job_id == job_id}
            wanted = [need for need in needs if need.run_id not in held]
            fresh: dict[str, list[Account]] = {}
            for account in sorted(accounts.values(), key=lambda a: a.id):
                if account.state == "fresh" and not account.minted:
                    fresh.setdefault(account.platform, []).append(account)
            short = {platform: (n, len(fresh.get(platform, [])))
                     for platform, n in Counter(need.platform for need in wanted).items()
                     if n > len(fresh.get(platform, []))}
            if short:
                raise NotEnoughFreshAccounts("; ".join(
                    f"{self.path}: job {job_id} needs {n} fresh {platform} accounts; the farm "
                    f"has {have}" for platform, (n, have) in short.items())
                    + " (add accounts to the file, or lower replicates)")
            given = {need.run_id: fresh[need.platform].pop(0) for need in wanted}
            self._append([self._move(account, "in-use", job_id, run_id)
                          for run_id, account in given.items()])
            for run_id, account in given.items():
                account.state, account.job_id, account.run_id = "in-use", job_id, run_id
            return {**{run_id: held[run_id] for run_id in held}, **given}

    def mint(self, platform: str, phone: str, job_id: str, run_id: str) -> Account:
        """A new account on a phone whose app logs into any account (the virtual phones'),
        in use by the run at once; the run's own if it already holds one."""
        with self._locked():
            accounts = self.accounts()
            for account in accounts.values():
                if account.state == "in-use" and (account.job_id, account.run_id) == \
                        (job_id, run_id):
                    return account
            number = 1 + sum(a.minted and a.phone == phone for a in accounts.values())
            account = Account(f"{platform}-{phone.replace(':', '_')}-{number}", platform, phone,
                              minted=True)
            self._append([{"account": account.id, "to": "created", "platform": platform,
                           "phone": phone},
                          self._move(account, "in-use", job_id, run_id)])
            account.state, account.job_id, account.run_id = "in-use", job_id, run_id
            return account

    def release(self, job_id: str, run_id: str) -> None:
        """The run is done: its account is cultivated (a no-op when already recorded)."""
        with self._locked():
            for account in self.accounts().values():
                if (account.job_id, account.run_id) == (job_id, run_id) and \
                        account.state == "in-use":
                    self._append([self._move(account, "cultivated", job_id, run_id)])

    def retire(self, account_id: str) -> None:
        with self._locked():
            account = self.accounts().get(account_id)
            if account is None:
                raise AccountStateError(f"{self.path}: no account {account_id!r}")
            if account.state != "retired":
                self._append([self._move(account, "retired")])
