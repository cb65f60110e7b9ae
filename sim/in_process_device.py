"""An in-process simulated phone: the simulated app's feed on one account, with a device clock.

It implements the same `Device` interface as a real phone, so the DeviceActor cannot tell the
difference, except that the simulated one can report the ground truth and be snapshotted.
Time is virtual: watching a video advances the device clock without waiting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bubblescope.contracts import Action, Frame, Observation, Performed, VideoTruth
from bubblescope.devices.device import Device
from bubblescope.sim.catalogue import Catalogue, CatalogueConfig, build_catalogue
from bubblescope.sim.feed_screen import feed_screen, video_truth
from bubblescope.sim.platform import AccountState, Feedback, Platform
from bubblescope.sim.profiles import PlatformProfile, named_profiles

SIM_EPOCH = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SimWorld:
    """Everything an in-process device needs to build its world; identical on every worker."""

    catalogue: CatalogueConfig = CatalogueConfig()
    profiles: dict[str, PlatformProfile] = field(default_factory=named_profiles)
    swipe_s: float = 0.4  # device time a swipe to the next video takes
    pace: float | None = None  # device seconds per wall-clock second; None: no waiting


def observe_video(catalogue: Catalogue, video: int, clock: datetime,
                  frames: tuple[Frame, ...] = ()) -> Observation:
    """The observation an in-process device gives for `video` (text read off the screen)."""
    return Observation(
        device_time=clock, transcript=catalogue.text(video).transcript,
        on_screen_text=feed_screen(catalogue, video).text(), video_id=catalogue.video_id(video),
        video_duration_s=float(catalogue.video_duration[video]), frames=frames,
    )


class InProcessDevice(Device):
    def __init__(self, serial: str, world: SimWorld) -> None:
        self.serial = serial
        self.world = world
        self.catalogue = build_catalogue(world.catalogue)
        self._platforms: dict[str, Platform] = {}
        self._platform: Platform | None = None
        self._account: AccountState | None = None
        self._video = -1
        self.clock = SIM_EPOCH

    def _platform_for(self, name: str) -> Platform:
        if name not in self._platforms:
            if name not in self.world.profiles:
                raise KeyError(f"no simulated platform {name!r} on device {self.serial}")
            self._platforms[name] = Platform(self.world.profiles[name], self.catalogue)
        return self._platforms[name]

    @property
    def _live(self) -> tuple[Platform, AccountState]:
        if self._platform is None or self._account is None:
            raise RuntimeError(f"device {self.serial}: no feed open; call open_feed first")
        return self._platform, self._account

    def open_feed(self, platform: str, account: str, seed: int) -> None:
        self._platform = self._platform_for(platform)
        self._account = self._platform.new_account(account, seed)
        self.clock = SIM_EPOCH
        self._video = self._platform.recommend(self._account)

    def begin_phase(self, phase: str) -> None:
        platform, account = self._live
        platform.begin_phase(account)

    def observe(self) -> Observation:
        return observe_video(self.catalogue, self._video, self.clock)

    def act(self, action: Action) -> Performed:
        platform, account = self._live
        platform.feedback(account, Feedback(self._video, action.watch_s, action.like,
                                            action.comment is not None, action.share is not None))
        spent = action.watch_s + self.world.swipe_s
        self.clock += timedelta(seconds=spent)
        self._video = platform.recommend(account)
        if self.world.pace:
            time.sleep(spent / self.world.pace)
        return Performed(like=action.like, comment=action.comment is not None,
                         share=action.share is not None)  # a simulated platform: all of it

    def ground_truth(self) -> VideoTruth:
        return video_truth(self.catalogue, self._video)

    def snapshot(self) -> dict:
        platform, account = self._live
        return {"platform": platform.profile.name, "account": platform.snapshot(account),
                "clock": self.clock.isoformat(), "video": self._video}

    def restore(self, snapshot: dict) -> None:
        self._platform = self._platform_for(snapshot["platform"])
        self._account = self._platform.restore(snapshot["account"])
        self.clock = datetime.fromisoformat(snapshot["clock"])
        self._video = int(snapshot["video"])
