"""DeviceActor: a Ray actor owning one device and the run currently on it.

The actor keeps no state that matters across a crash: the coordinator hands it the run's
last committed checkpoint on every (re)start, so a restarted actor picks up exactly there.
"""

from __future__ import annotations

import os

from bubblescope.actors.loader import DeviceConfig, make_classifier, make_device
from bubblescope.actors.plan import RunSpec
from bubblescope.actors.stepper import Chunk, RunStepper
from bubblescope.agent.policy import build_policy
from bubblescope.personas.schema import Persona


class DeviceActor:
    def __init__(self, serial: str, config: DeviceConfig) -> None:
        self.serial = serial
        self.config = config
        self.device = make_device(serial, config)
        self.stepper: RunStepper | None = None

    def start(self, run: RunSpec, persona: Persona, policy_spec,
              checkpoint: dict | None) -> int:
        """Open `run` on this device, fresh or from `checkpoint`; returns the next step.

        `policy_spec` is the job's policy section (kind, and the agent settings for kind
        agent)."""
        policy = build_policy(policy_spec.kind, persona, run.seed, policy_spec.agent)
        agent = policy_spec.agent
        if agent is not None and agent.classify:
            from bubblescope.agent.serve_client import VlmClassifier

            classifier = VlmClassifier(agent.deployment.app_name, agent.decide_timeout_s)
        else:
            classifier = make_classifier(self.device, self.config)
        self.stepper = RunStepper(run, persona, self.device, policy, classifier)
        self.stepper.start(checkpoint)
        return self.stepper.next_step

    def advance(self, max_steps: int, max_seconds: float = float("inf")) -> Chunk:
        if self.stepper is None:
            raise RuntimeError(f"device {self.serial}: advance before start")
        return self.stepper.advance(max_steps, max_seconds)

    def wait_online(self, timeout_s: float) -> None:
        """Block until the device is reachable again (devices that can drop off only)."""
        wait = getattr(self.device, "wait_online", None)
        if wait is not None:
            wait(timeout_s)

    def close(self) -> None:
        self.device.close()

    def pid(self) -> int:
        return os.getpid()
