"""One run's step loop, observe -> decide -> act -> record, free of Ray so it can be timed alone.

A `RunStepper` owns the device, the policy and the classifier for one run. `advance` takes a
chunk of steps and returns their StepRecords with the checkpoint after them; restoring that
checkpoint later reproduces the run exactly from the next step on.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from bubblescope.actors.plan import RunSpec
from bubblescope.agent.policy import HistoryItem, Policy
from bubblescope.contracts import Action, StageLatency, StepRecord
from bubblescope.devices.device import Device
from bubblescope.metrics.reversal import QuantileReversal
from bubblescope.perception.classifier import Classifier
from bubblescope.personas.schema import Persona
from bubblescope.store import STEP_SCHEMA

HISTORY = 8  # videos of context a policy sees


@dataclass
class Chunk:
    steps: pa.Table  # StepRecord rows (STEP_SCHEMA): columnar, cheap to ship between actors
    checkpoint: dict
    busy_s: float  # wall time inside advance()
    stage_s: dict[str, float] = field(default_factory=dict)


class RunStepper:
    def __init__(self, run: RunSpec, persona: Persona, device: Device, policy: Policy,
                 classifier: Classifier, node: str | None = None) -> None:
        self.run = run
        self.node = node
        self.device = device
        self.policy = policy
        self.classifier = classifier
        self.reversal = QuantileReversal.from_sample(persona.stats.duration_sample)
        self.history: deque[HistoryItem] = deque(maxlen=HISTORY)
        self.next_step = 0

    def start(self, checkpoint: dict | None) -> None:
        if checkpoint is None:
            self.device.open_feed(self.run.platform, self.run.account, self.run.seed)
            self.next_step = 0
            return
        self.device.restore(checkpoint["device"])
        self.policy.restore(checkpoint["policy"])
        self.next_step = int(checkpoint["next_step"])

    def checkpoint(self) -> dict:
        return {"next_step": self.next_step, "device": self.device.snapshot(),
                "policy": self.policy.snapshot()}

    def _reverse(self, action: Action) -> Action:
        """The reversed persona: the mirrored watch time, and none of the persona's engagement."""
        return action.model_copy(update={"watch_s": round(self.reversal.reverse(action.watch_s), 2),
                                         "like": False, "comment": None, "share": None})

    def step(self) -> dict:
        run = self.run
        phase, phase_step = run.phase_at(self.next_step)
        if phase_step == 0:
            self.device.begin_phase(phase.name)
        t0 = time.perf_counter()
        observation = self.device.observe()
        category = self.classifier.classify(observation)
        observation = observation.model_copy(update={"category": category})
        truth = self.device.ground_truth()
        t1 = time.perf_counter()
        decided = self.policy.decide(observation, tuple(self.history))
        action = self._reverse(decided) if phase.reversed else decided
        t2 = time.perf_counter()
        performed = self.device.act(action)
        t3 = time.perf_counter()
        record = StepRecord(
            job_id=run.job_id, run_id=run.run_id, persona=run.persona, platform=run.platform,
            experiment=run.experiment, replicate=run.replicate, device=self.device.serial,
            node=self.node, account=run.account, phase=phase.name, step=self.next_step,
            phase_step=phase_step,
            device_time=observation.device_time,
            video_id=observation.video_id or (truth.video_id if truth else None),
            video_duration_s=observation.video_duration_s or (truth.duration_s if truth else None),
            category=category,
            category_truth=truth.category if truth else None, decided_watch_s=decided.watch_s,
            reversed=phase.reversed, action=action, performed=performed,
            served=self.policy.served(),
            latency=StageLatency(observe=t1 - t0, decide=t2 - t1, act=t3 - t2),
            recorded_at=datetime.now(UTC),
        )
        self.history.append(HistoryItem(observation, action))
        self.next_step += 1
        row = record.to_row()
        row["latency_record_s"] = time.perf_counter() - t3
        return row

    def advance(self, max_steps: int, max_seconds: float = float("inf")) -> Chunk:
        """Up to `max_steps` steps, stopping early once `max_seconds` of wall time are spent."""
        began = time.perf_counter()
        rows = []
        end = min(self.run.total_steps, self.next_step + max_steps)
        while self.next_step < end:
            rows.append(self.step())
            if time.perf_counter() - began >= max_seconds:
                break
        steps = pa.Table.from_pylist(rows, schema=STEP_SCHEMA)
        stage_s = {stage: sum(r[f"latency_{stage}_s"] for r in rows)
                   for stage in ("observe", "decide", "act", "record")}
        return Chunk(steps=steps, checkpoint=self.checkpoint(),
                     busy_s=time.perf_counter() - began, stage_s=stage_s)

    @property
    def done(self) -> bool:
        return self.next_step >= self.run.total_steps
