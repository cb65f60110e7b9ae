"""The one place that picks a device class and its classifier, by the type of the config."""

from __future__ import annotations

from bubblescope.serve.classifier import Classifier, SimTruthClassifier
from bubblescope.sim.device import InProcessDevice, SimWorld

from .adb_device import AdbDeviceConfig, AdbPhone
from .device import Device

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
        from bubblescope.serve.text_classifier import TextCategoryClassifier

        return TextCategoryClassifier()
    raise TypeError(f"no classifier for config of type {type(config).__name__}")


def make_transcriber(config: AdbDeviceConfig):
    """Speech segments (silero-vad) -> recognition (Whisper at a local path) -> transcript."""
    if not config.speech:
        return None
    from bubblescope.serve.speech import TranscriptPipeline
    from bubblescope.serve.vad import SpeechSegmenter
    from bubblescope.serve.whisper_asr import WhisperRecognizer

    return TranscriptPipeline(SpeechSegmenter(), WhisperRecognizer(config.whisper_path))
