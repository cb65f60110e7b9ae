"""Audio to transcript: speech segments from the VAD, each recognised by a `SpeechRecognizer`.

The recogniser is an interface so that the device path does not care which model listens:
production loads a Whisper checkpoint from a configured folder (`WhisperRecognizer`), tests
build a tiny Whisper of the same architecture (`tiny_whisper`), and a job that disables
speech recognition gets `NullRecognizer`, which hears nothing. `TranscriptPipeline` ties one
device's audio stream to a segmenter and a recogniser, one video at a time, and recognises
each finished segment once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Protocol

import numpy as np

from bubblescope.perception.errors import AudioFormatError
from bubblescope.perception.vad import VAD_RATE, SpeechSegment

__all__ = ["NullRecognizer", "SpeechRecognizer", "TranscriptPipeline", "check_audio", "VAD_RATE"]


def check_audio(audio: np.ndarray) -> np.ndarray:
    """The audio a recogniser accepts: 1-D float32 at 16 kHz (the rate cannot be checked)."""
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or audio.dtype != np.float32:
        shape = getattr(audio, "shape", None)
        raise AudioFormatError(f"speech recognisers take 1-D float32 audio at {VAD_RATE} Hz, "
                               f"got {type(audio).__name__} {getattr(audio, 'dtype', '')} {shape}")
    return audio


class SpeechRecognizer(ABC):
    name: str

    @abstractmethod
    def transcribe(self, audio: np.ndarray) -> str:
        """The words spoken in `audio` (float32 mono, 16 kHz); "" when none are heard."""


class NullRecognizer(SpeechRecognizer):
    """For jobs configured without speech recognition: every transcript is empty."""

    name = "none"

    def transcribe(self, audio: np.ndarray) -> str:
        check_audio(audio)
        return ""


class Segmenter(Protocol):
    """What the pipeline needs of `vad.SpeechSegmenter` (a fake can stand in for tests)."""

    def reset(self) -> None: ...

    def feed(self, pcm: np.ndarray, pts_us: int) -> None: ...

    def segments(self) -> list[SpeechSegment]: ...


class TranscriptPipeline:
    """One device's audio stream -> the transcript of the video on screen.

    Call `reset()` when a new video appears, `feed()` with every capture chunk, and
    `transcript()` when the policy needs it. A finished segment is recognised once and its
    text kept until the next reset; speech still running is recognised on each call, so the
    transcript covers everything heard so far.
    """

    def __init__(self, segmenter: Segmenter, recognizer: SpeechRecognizer) -> None:
        self.segmenter = segmenter
        self.recognizer = recognizer
        self._texts: dict[tuple[float, float], str] = {}  # finished segment -> its text
        self._lock = threading.Lock()  # one recognition at a time
        self._stats = {"segments": 0, "recognised": 0, "audio_s": 0.0}

    def reset(self) -> None:
        with self._lock:
            self.segmenter.reset()
            self._texts.clear()

    def feed(self, pcm: np.ndarray, pts_us: int) -> None:
        self.segmenter.feed(pcm, pts_us)

    def transcript(self) -> str:
        """The recognised text of the speech so far in this video, segments in order."""
        with self._lock:
            texts = [self._text(segment) for segment in self.segmenter.segments()]
        return " ".join(text for text in texts if text)

    def stats(self) -> dict[str, float]:
        """Counters since construction: segments seen final, recognitions run, seconds heard."""
        with self._lock:
            return dict(self._stats)

    def _text(self, segment: SpeechSegment) -> str:
        key = (segment.start_s, segment.end_s)
        if segment.final and key in self._texts:
            return self._texts[key]
        text = self.recognizer.transcribe(segment.audio).strip()
        self._stats["recognised"] += 1
        self._stats["audio_s"] += len(segment.audio) / VAD_RATE
        if segment.final:
            self._texts[key] = text
            self._stats["segments"] += 1
        return text
