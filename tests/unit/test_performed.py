"""What a device did of an action, recorded beside what the policy decided: a simulated
platform performs everything; the step row carries both."""

from __future__ import annotations

from bubblescope.contracts import Action, StepRecord
from bubblescope.sim.in_process_device import InProcessDevice, SimWorld


def test_the_simulated_platform_performs_everything_and_the_row_says_so() -> None:
    device = InProcessDevice("sim-0", SimWorld())
    device.open_feed("douyin-like", "acct", seed=1)
    device.observe()
    done = device.act(Action(watch_s=3.0, like=True, comment="nice", share="Friends"))
    assert (done.like, done.comment, done.share) == (True, True, True)
    device.observe()
    idle = device.act(Action(watch_s=3.0))
    assert (idle.like, idle.comment, idle.share) == (False, False, False)


def test_decided_and_performed_round_trip_through_a_row() -> None:
    from datetime import UTC, datetime

    from bubblescope.contracts import Performed, StageLatency

    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = StepRecord(
        job_id="j", run_id="r", persona="p", platform="x", experiment="breadth", replicate=0,
        device="d", account="a", phase="breadth", step=0, phase_step=0, device_time=now,
        decided_watch_s=2.0, reversed=False, recorded_at=now, latency=StageLatency(),
        action=Action(watch_s=2.0, like=True, comment="hi"),
        performed=Performed(like=True, comment=False))  # the text withheld
    row = record.to_row()
    assert row["action_comment"] == "hi" and row["performed_comment"] is False
    assert StepRecord.from_row(row) == record
