"""What a job says about phones on adb (backend adb), read by the adb + scrcpy device.

Declared once here (pydantic, `extra="forbid"`): the job spec embeds these under `devices`,
and `AdbPhone` and `ScrcpyClient` take them as they are, so every default lives here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScrcpySpec(_Spec):
    server_jar: str | None = Field(
        default=None, description="the scrcpy-server file (relative to the job file); default: "
        "the first of /usr/share/scrcpy/scrcpy-server, /usr/local/share/scrcpy/scrcpy-server, "
        "~/.local/share/bubblescope/scrcpy-server (where `farm up` puts the virtual one)")
    max_size: int = Field(default=640, ge=0, le=4096,
                          description="longer video side, pixels (0: the device's size)")
    max_fps: float = Field(default=5.0, ge=0.5, le=120, description="video frames per second")
    sample_fps: float = Field(default=2.0, gt=0, le=60,
                              description="frames per second decoded into images")
    audio: bool = Field(default=True, description="stream the device's audio")
    audio_codec: Literal["opus", "raw"] = Field(default="opus",
                                                description="audio codec the server encodes")
    video_bit_rate: int = Field(default=2_000_000, ge=10_000, le=200_000_000,
                                description="video bit rate the server encodes at, bits/s")
    read_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                  description="a stream silent this long is broken, seconds")
    history: int = Field(default=64, ge=1, le=10_000, description="decoded frames kept")


class SpeechSpec(_Spec):
    enabled: bool = Field(default=True, description="voice activity + speech recognition")
    whisper_path: str | None = Field(
        default=None, description="local Whisper checkpoint folder (relative to the job file); "
        "default: a tiny model built locally on first use (tests and demos only)")


class AdbSpec(_Spec):
    """Phones on adb (backend adb): real ones, or the virtual farm's."""

    serials: list[str] | None = Field(
        default=None, description="devices to use; default: every device adb lists as online")
    host: str = Field(default="127.0.0.1", description="adb server host, when no Ray node is "
                      "labelled a phone node (a labelled node's adb is its own, on 127.0.0.1)")
    port: int = Field(default=5037, ge=1, le=65535, description="adb server port, when no Ray "
                      "node is labelled a phone node (a labelled node's is its "
                      "bubblescope.io/adb-port label)")
    node_labels: dict[str, str] = Field(
        default_factory=dict, description="use only the phone nodes (Ray nodes labelled "
        "bubblescope.io/phones=true) that carry all these labels too; on a cluster with no "
        "phone node, host and port name the coordinator's node's adb server instead")
    app: str = Field(default="bubblescope-sim",
                     description="app driver: bubblescope-sim, douyin, kuaishou or bilibili")
    post_text: bool = Field(
        default=False, description="post what the model writes (comments, shares to "
        "people) on a real platform; off, only likes are performed there and the step "
        "records what was withheld. The simulated app always gets everything")
    glance_s: float = Field(default=1.5, ge=0, le=60,
                            description="device seconds of a video seen before deciding")
    frames_per_observation: int = Field(default=3, ge=1, le=64,
                                        description="most frames put in an observation")
    settle_timeout_s: float = Field(default=8.0, gt=0, le=600,
                                    description="real seconds for the feed to show a new video")
    online_timeout_s: float = Field(default=300, gt=0, le=86_400,
                                    description="how long to wait for a device that dropped off")
    scrcpy: ScrcpySpec = Field(default=ScrcpySpec(), description="screen, sound and touches")
    speech: SpeechSpec = Field(default=SpeechSpec(), description="transcripts of the sound")


class FarmSpec(_Spec):
    """What every backend's `devices` section holds: how device actors are run."""

    cpus_per_device: float = Field(default=0.5, ge=0, le=64, description="Ray CPUs per actor")
    max_restarts: int = Field(default=5, ge=0, le=1000,
                              description="restarts of a failed device actor per run")


class AdbDevicesSpec(FarmSpec):
    """backend adb: phones on adb, real or the virtual farm's."""

    backend: Literal["adb"] = Field(description="adb: phones on adb")
    classifier: Literal["text-embedding"] = Field(
        default="text-embedding", description="category classifier over what the device shows "
        "(sim-truth reads the simulator, so only backend sim may use it)")
    adb: AdbSpec = Field(default=AdbSpec(), description="where the phones are and how to "
                         "drive them")
    accounts: str | None = Field(
        default=None, description="the farm's account file (relative to the job file): which "
        "platform accounts exist on which phone; every run then takes a fresh one (virtual "
        "phones mint theirs) and the file's ledger records it. Default: no inventory, the "
        "account each phone is logged into")
    count: int | None = Field(
        default=None, ge=1, le=4096, description="not read with backend adb (one device actor "
        "per phone): the sim count a job file keeps so that it switches backend by one key")

    @property
    def online_timeout_s(self) -> float:
        """How long the coordinator waits for a device that dropped off."""
        return self.adb.online_timeout_s
