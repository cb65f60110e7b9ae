"""The one place that picks a device class and its classifier, by the type of the config."""

from __future__ import annotations

from bubblescope.serve.classifier import Classifier, SimTruthClassifier
from bubblescope.sim.device import InProcessDevice, SimWorld

from .device import Device

DeviceConfig = SimWorld  # the adb backend adds its config type here


def make_device(serial: str, config: DeviceConfig) -> Device:
    if isinstance(config, SimWorld):
        return InProcessDevice(serial, config)
    raise TypeError(f"no device for config of type {type(config).__name__}")


def make_classifier(device: Device, config: DeviceConfig) -> Classifier:
    if isinstance(config, SimWorld):
        return SimTruthClassifier(device.ground_truth)
    raise TypeError(f"no classifier for config of type {type(config).__name__}")
