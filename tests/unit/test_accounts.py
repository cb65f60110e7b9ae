"""The farm's account inventory: the ledger's fold, atomic allocation, minting, and what it
refuses, on real files (and two processes racing over one)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from bubblescope.actors.accounts import AccountInventory, Need
from bubblescope.actors.errors import AccountFileError, AccountStateError, NotEnoughFreshAccounts
from bubblescope.cluster.cli import exit_code


def account_file(folder: Path, count: int, platform: str = "douyin", **extra: str) -> Path:
    lines = ["accounts:"] + [f"  - {{id: acct-{i}, platform: {platform}, phone: phone-{i % 2}"
                             + "".join(f", {k}: {v}" for k, v in extra.items()) + "}"
                             for i in range(count)]
    path = folder / "accounts.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def needs(job: str, count: int, platform: str = "douyin") -> list[Need]:
    return [Need(f"{job}-run-{i}", platform) for i in range(count)]


def test_an_account_goes_fresh_in_use_cultivated_retired(tmp_path: Path) -> None:
    inventory = AccountInventory(account_file(tmp_path, 2))
    given = inventory.allocate("j1", needs("j1", 1))
    account = given["j1-run-0"]
    assert (account.state, account.job_id) == ("in-use", "j1")
    inventory.release("j1", "j1-run-0")
    inventory.release("j1", "j1-run-0")  # replayed by a restarted coordinator: a no-op
    assert inventory.accounts()[account.id].state == "cultivated"
    inventory.retire(account.id)
    assert inventory.accounts()[account.id].state == "retired"
    assert inventory.accounts()[account.id].runs == ["j1/j1-run-0"]
    states = [json.loads(line)["to"] for line in inventory.ledger.read_text().splitlines()]
    assert states == ["in-use", "cultivated", "retired"]


def test_a_job_needing_more_fresh_accounts_is_refused_with_both_numbers(tmp_path) -> None:
    inventory = AccountInventory(account_file(tmp_path, 4))
    with pytest.raises(NotEnoughFreshAccounts) as refused:
        inventory.allocate("j1", needs("j1", 6))
    message = str(refused.value)
    assert "needs 6 fresh douyin accounts; the farm has 4" in message and "\n" not in message
    assert exit_code(refused.value) == 2
    assert not inventory.ledger.exists() or inventory.ledger.read_text() == ""  # nothing taken


def test_no_account_is_fresh_twice_across_jobs_and_a_resumed_job_keeps_its_own(tmp_path) -> None:
    inventory = AccountInventory(account_file(tmp_path, 4))
    first = inventory.allocate("j1", needs("j1", 3))
    again = inventory.allocate("j1", needs("j1", 3))  # the same job, resumed
    assert {r: a.id for r, a in first.items()} == {r: a.id for r, a in again.items()}
    with pytest.raises(NotEnoughFreshAccounts, match="needs 2 fresh douyin accounts; the farm "
                                                     "has 1"):
        inventory.allocate("j2", needs("j2", 2))
    second = inventory.allocate("j2", needs("j2", 1))
    assert not {a.id for a in second.values()} & {a.id for a in first.values()}


def race(path: str, job: str, out: str) -> None:
    try:
        given = AccountInventory(Path(path)).allocate(job, needs(job, 3))
        Path(out).write_text(json.dumps(sorted(a.id for a in given.values())))
    except NotEnoughFreshAccounts:
        Path(out).write_text("[]")


def test_two_processes_racing_never_share_an_account(tmp_path) -> None:
    path = account_file(tmp_path, 5)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=race, args=(str(path), f"job{i}", str(tmp_path / f"{i}")))
               for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    taken = [json.loads((tmp_path / f"{i}").read_text()) for i in range(2)]
    assert sorted(len(t) for t in taken) == [0, 3]  # one got three, the other was refused
    lines = [json.loads(line) for line in AccountInventory(path).ledger.read_text().splitlines()]
    assert len(lines) == 3 and len({line["account"] for line in lines}) == 3


def test_virtual_phones_mint_a_fresh_account_per_run(tmp_path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts: []\n")
    inventory = AccountInventory(path)
    one = inventory.mint("douyin-like", "127.0.0.1:5555", "j1", "r1")
    two = inventory.mint("douyin-like", "127.0.0.1:5555", "j1", "r2")
    assert one.id != two.id and one.phone == "127.0.0.1:5555"
    assert inventory.mint("douyin-like", "127.0.0.1:5555", "j1", "r1").id == one.id  # replay
    assert {a.state for a in inventory.accounts().values()} == {"in-use"}
    with pytest.raises(AccountStateError, match="cannot become in-use"):
        inventory._move(inventory.accounts()[one.id], "in-use")


def test_a_torn_last_ledger_line_is_ignored(tmp_path) -> None:
    inventory = AccountInventory(account_file(tmp_path, 2))
    inventory.allocate("j1", needs("j1", 1))
    with inventory.ledger.open("a") as handle:
        handle.write('{"account": "acct-1", "to": "in-')  # a crash mid-append
    assert sum(a.state == "fresh" for a in inventory.accounts().values()) == 1
    given = inventory.allocate("j2", needs("j2", 1))
    assert given["j2-run-0"].state == "in-use"


@pytest.mark.parametrize("body, says", [
    ("accounts:\n  - {id: a, platform: p}\n", "accounts.0.phone"),
    ("accounts:\n  - {id: a, platform: p, phone: s, password: hunter2}\n", "password"),
    ("accounts:\n  - {id: a, platform: p, phone: s, credentials: hunter2}\n", "credentials"),
    ("accounts:\n  - {id: a, platform: p, phone: s}\n  - {id: a, platform: p, phone: t}\n",
     "listed twice"),
    ("accounts: [\n", "not valid YAML"),
    ("- a\n", "one mapping"),
])
def test_a_bad_account_file_is_one_line_naming_it(tmp_path, body: str, says: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(body)
    with pytest.raises(AccountFileError) as bad:
        AccountInventory(path).accounts()
    message = str(bad.value)
    assert says in message and str(path) in message and "\n" not in message
    assert "hunter2" not in message  # what a user put where a reference goes is not echoed
    assert exit_code(bad.value) == 2


def test_the_accounts_command_adds_lists_and_refuses_in_one_line(tmp_path, capsys) -> None:
    from bubblescope.cluster import cli

    path = str(tmp_path / "farm.yaml")
    assert cli.main(["accounts", "add", "--file", path, "--id", "a1", "--platform", "douyin",
                     "--phone", "S1", "--credentials", "secret:farm/a1"]) == 0
    assert cli.main(["accounts", "add", "--file", path, "--id", "a1", "--platform", "douyin",
                     "--phone", "S2"]) == 2
    assert cli.main(["accounts", "add", "--file", path, "--id", "a2", "--platform", "douyin",
                     "--phone", "S2", "--credentials", "hunter2"]) == 2
    assert cli.main(["accounts", "list", "--file", path]) == 0
    out, err = capsys.readouterr()
    assert "a1\tdouyin\tS1\tfresh" in out and "1 accounts: 1 fresh" in out
    assert "hunter2" not in out + err and "secret:farm/a1" not in out
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "already in the file" in errors[0] and "--credentials" in errors[1]
