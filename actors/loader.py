"""The one place that picks a device class and its classifier, by the type of the config."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bubblescope.devices.adb_phone import AdbDeviceConfig, AdbPhone
from bubblescope.devices.device import Device
from bubblescope.perception.classifier import Classifier, SimTruthClassifier
from bubblescope.sim.device import InProcessDevice, SimWorld

DeviceConfig = SimWorld | AdbDeviceConfig


def make_device(serial: str, config: DeviceConfig) -> Device:
    if isinstance(config, SimWorld):
        return InProcessDevice(serial, config)
    if isinstance(config, AdbDeviceConfig):
        return AdbPhone(serial, config, transcriber=make_transcriber(config))
    raise TypeError(f"no device for config of type {type(config).__name__}")


def make_classifier(device: Device, config: DeviceConfig) -> Classifier:
    if isinstance(config, SimWorld):
        return SimTruthClassifier(device.ground_truth)
    if isinstance(config, AdbDeviceConfig) and config.classifier == "text-embedding":
        from bubblescope.perception.text_classifier import TextCategoryClassifier

        return TextCategoryClassifier()
    raise TypeError(f"no classifier for config of type {type(config).__name__}")


TINY_WHISPER = Path("~/.cache/bubblescope/tiny-whisper").expanduser()
TINY_WHISPER_TOKENS = 8  # the untrained tiny model never stops early: keep its output short


def tiny_whisper(folder: Path = TINY_WHISPER) -> Path:
    """The locally built tiny Whisper (demos and tests), built once per machine; concurrent
    builders each write a temporary copy and the first rename wins."""
    if (folder / "config.json").is_file():
        return folder
    from bubblescope.perception.tiny_whisper import build_tiny_whisper

    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix="tiny-whisper-", dir=folder.parent))
    build_tiny_whisper(temporary)
    try:
        temporary.rename(folder)
    except OSError:  # another process got there first
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def make_transcriber(config: AdbDeviceConfig):
    """Speech segments (silero-vad) -> recognition (Whisper at a local path) -> transcript."""
    if not config.speech:
        return None
    from bubblescope.perception.speech import TranscriptPipeline
    from bubblescope.perception.vad import SpeechSegmenter
    from bubblescope.perception.whisper_asr import WhisperOptions, WhisperRecognizer

    if config.whisper_path is None:
        recognizer = WhisperRecognizer(tiny_whisper(),
                                       WhisperOptions(max_new_tokens=TINY_WHISPER_TOKENS))
    else:
        recognizer = WhisperRecognizer(config.whisper_path)
    return TranscriptPipeline(SpeechSegmenter(), recognizer)
