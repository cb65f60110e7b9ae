"""What a job says about the simulated world and its in-process phones (backend sim)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bubblescope.devices.spec import AdbSpec, FarmSpec, _Spec


class SimDevicesSpec(FarmSpec):
    """backend sim: in-process simulated phones, one per device actor."""

    backend: Literal["sim"] = Field(
        default="sim", description="sim: in-process simulated phones; adb: phones on adb")
    count: int = Field(default=4, ge=1, le=4096, description="device actors run in parallel")
    classifier: Literal["sim-truth", "text-embedding"] = Field(
        default="sim-truth", description="category classifier: sim-truth reads the simulator's "
        "label, text-embedding reads what the device shows")
    sim_pace: float | None = Field(
        default=None, gt=0, le=1_000_000, description="device seconds per wall-clock second "
        "(1 = real time, for load tests and demos); none: as fast as the CPU allows. Pacing "
        "never changes results")
    adb: AdbSpec | None = Field(
        default=None, description="not read with backend sim: the adb settings a job file "
        "keeps so that it switches backend by one key")

    @property
    def online_timeout_s(self) -> float:
        """Simulated phones never drop off: nothing to wait for."""
        return 0.0


class WorldSpec(_Spec):
    """The simulated world (backend sim)."""

    catalogue_videos: int = Field(default=20_000, ge=12_000, le=2_000_000,
                                  description="videos in the simulated catalogue")
    creators: int = Field(default=2_500, ge=200, le=1_000_000, description="simulated creators")
