"""`bubblescope accounts`: the farm's account inventory (list, add, retire)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from pydantic import ValidationError

from bubblescope.actors.accounts import AccountEntry, AccountInventory
from bubblescope.actors.errors import AccountFileError
from bubblescope.cluster.cli_groups import command_group


def _list(args: argparse.Namespace) -> int:
    accounts = AccountInventory(args.file).accounts()
    print("id\tplatform\tphone\tstate\tjob/run\truns served")
    for account in sorted(accounts.values(), key=lambda a: a.id):
        held = f"{account.job_id}/{account.run_id}" if account.state == "in-use" else "-"
        print(f"{account.id}\t{account.platform}\t{account.phone}\t{account.state}\t{held}\t"
              f"{len(account.runs)}")
    states = [a.state for a in accounts.values()]
    print(f"{len(states)} accounts: " + ", ".join(
        f"{states.count(s)} {s}" for s in ("fresh", "in-use", "cultivated", "retired")))
    return 0


def _add(args: argparse.Namespace) -> int:
    inventory = AccountInventory(args.file)
    declared = inventory.declared() if args.file.exists() else []
    try:
        entry = AccountEntry(id=args.id, platform=args.platform, phone=args.phone,
                             credentials=args.credentials)
    except ValidationError as exc:
        error = exc.errors()[0]  # its message only: the input may be a pasted password
        raise AccountFileError(error["msg"], source=str(args.file),
                               key=f"--{error['loc'][0]}") from None
    if any(existing.id == entry.id for existing in declared):
        raise AccountFileError(f"account {entry.id!r} is already in the file; pick another id",
                               source=str(args.file), key="--id")
    accounts = [a.model_dump(exclude_none=True) for a in (*declared, entry)]
    args.file.write_text(yaml.safe_dump({"accounts": accounts}, sort_keys=False), "utf-8")
    print(f"added {entry.id} ({entry.platform} on {entry.phone}): fresh")
    return 0


def _retire(args: argparse.Namespace) -> int:
    AccountInventory(args.file).retire(args.id)
    print(f"retired {args.id}")
    return 0


def add_accounts(sub) -> None:
    commands = command_group(sub, "accounts", "the farm's platform accounts and their states", (
        ("list", _list, "every account, its phone, state and run"),
        ("add", _add, "declare a fresh account on a phone"),
        ("retire", _retire, "take an account out of service")))
    for command in commands.values():
        command.add_argument("--file", type=Path, required=True,
                             help="the farm's account file (its ledger sits beside it)")
    for command in (commands["add"], commands["retire"]):
        command.add_argument("--id", required=True, help="the account's name")
    add = commands["add"]
    add.add_argument("--platform", required=True)
    add.add_argument("--phone", required=True, help="serial of the phone holding it")
    add.add_argument("--credentials", help="a reference only: secret:NAME/KEY or file:PATH on "
                     "the device node, never the password")
