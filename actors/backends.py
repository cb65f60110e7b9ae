"""From a job's `devices` section to what the coordinator runs: one device config shared by
every actor, and the serials of the devices to run on."""

from __future__ import annotations

from pathlib import Path

import adbutils

from bubblescope.actors.loader import DeviceConfig
from bubblescope.devices.adb_phone import AdbDeviceConfig
from bubblescope.devices.errors import AdbServerUnreachable
from bubblescope.devices.scrcpy.client import ScrcpyConfig
from bubblescope.errors import ConfigError
from bubblescope.sim.catalogue import CatalogueConfig
from bubblescope.sim.device import SimWorld


def world_of(job) -> SimWorld:
    world = job.spec.world
    return SimWorld(catalogue=CatalogueConfig(seed=job.spec.seed, videos=world.catalogue_videos,
                                              creators=world.creators),
                    profiles=dict(job.profiles), pace=job.spec.devices.sim_pace)


def device_config_of(job) -> DeviceConfig:
    devices = job.spec.devices
    if devices.backend == "sim":
        return world_of(job)
    adb, scrcpy = devices.adb, devices.adb.scrcpy
    if scrcpy.server_jar is None:
        raise ConfigError("no scrcpy server file; set devices.adb.scrcpy.server_jar",
                          key="devices.adb.scrcpy.server_jar")
    return AdbDeviceConfig(
        scrcpy=ScrcpyConfig(jar=Path(scrcpy.server_jar), max_size=scrcpy.max_size,
                            max_fps=scrcpy.max_fps, sample_fps=scrcpy.sample_fps,
                            # sound is only needed for transcripts
                            audio=scrcpy.audio and adb.speech.enabled,
                            audio_codec=scrcpy.audio_codec),
        adb_host=adb.host, adb_port=adb.port, app=adb.app, glance_s=adb.glance_s,
        online_timeout_s=adb.online_timeout_s, classifier=devices.classifier_kind,
        speech=adb.speech.enabled, whisper_path=adb.speech.whisper_path)


def device_serials(job) -> list[str]:
    """sim: one name per actor; adb: the listed serials, or every device online."""
    devices = job.spec.devices
    if devices.backend == "sim":
        return [f"sim-{i}" for i in range(devices.count)]
    if devices.adb.serials:
        return list(devices.adb.serials)
    client = adbutils.AdbClient(host=devices.adb.host, port=devices.adb.port, socket_timeout=10)
    try:
        online = sorted(d.serial for d in client.list() if d.state == "device")
    except (adbutils.AdbError, OSError) as exc:
        raise AdbServerUnreachable(
            f"no adb server answers at {devices.adb.host}:{devices.adb.port} ({exc}); start one "
            "(adb start-server) or fix devices.adb.host and devices.adb.port") from exc
    if not online:
        raise ConfigError("no device online on adb; plug in a phone or `bubblescope farm up`",
                          key="devices.adb.serials")
    return online
