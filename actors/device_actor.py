"""DeviceActor: a Ray actor owning one device and the run currently on it.

The actor keeps no state that matters across a crash: the coordinator hands it the run's
last committed checkpoint on every (re)start, so a restarted actor picks up exactly there.
Its device, classifier and policy come from the loader, by the job's specs.
"""

from __future__ import annotations

import os

import ray

from bubblescope.actors.loader import make_classifier, make_device, make_policy
from bubblescope.actors.plan import RunSpec
from bubblescope.actors.stepper import Chunk, RunStepper
from bubblescope.jobspec import DevicesSpec, PolicySpec
from bubblescope.personas.schema import Persona
from bubblescope.sim.in_process_device import SimWorld


class DeviceActor:
    def __init__(self, serial: str, devices: DevicesSpec, world: SimWorld | None = None) -> None:
        """`devices`: the job's devices spec; `world`: the simulated world (backend sim)."""
        self.serial = serial
        self.devices = devices
        self.device = make_device(serial, devices, world)
        self.stepper: RunStepper | None = None

    def start(self, run: RunSpec, persona: Persona, policy: PolicySpec,
              checkpoint: dict | None) -> int:
        """Open `run` on this device, fresh or from `checkpoint`; returns the next step.
        `policy` is the job's policy spec."""
        decider = make_policy(policy, persona, run.seed)
        classifier = make_classifier(self.device, self.devices, policy)
        node = ray.get_runtime_context().get_node_id()
        self.stepper = RunStepper(run, persona, self.device, decider, classifier, node)
        self.stepper.start(checkpoint)
        return self.stepper.next_step

    def advance(self, max_steps: int, max_seconds: float = float("inf")) -> Chunk:
        if self.stepper is None:
            raise RuntimeError(f"device {self.serial}: advance before start")
        return self.stepper.advance(max_steps, max_seconds)

    def wait_online(self, timeout_s: float) -> None:
        """Block until the device is reachable again (at once for devices that cannot drop)."""
        self.device.wait_online(timeout_s)

    def close(self) -> None:
        self.device.close()

    def pid(self) -> int:
        return os.getpid()
