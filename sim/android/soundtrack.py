"""The sound of the video on screen, in scrcpy's capture format (48 kHz stereo s16le).

Each video has a quiet soundtrack that depends on its category (a chord on a root note from the
main category, minor or major and a beat tempo from the subcategory) and, over it, speech of
its transcript, so a speech recogniser on the audio stream recovers what the catalogue says
the video says. Speech is synthesised by Debian's espeak-ng (a subprocess with a timeout),
paced to fit the video, resampled from 22050 Hz to 48 kHz, and cached per video. A video
loops while it stays on screen, and its sound loops with it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from bubblescope.sim.android.errors import SpeechUnavailable
from bubblescope.sim.catalogue import Catalogue

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
SPEECH_START_S = 0.5  # speech begins this far into the video
MUSIC_LEVEL = 0.05  # soundtrack peak, full scale 1.0: quiet under the voice
SPEECH_LEVEL = 0.5


def parse_wav(data: bytes) -> tuple[int, np.ndarray]:
    """(sample rate, mono float32) of espeak-ng's 16-bit WAV. Written to a pipe, its RIFF and
    data sizes are placeholders, so the samples are simply everything after the data tag."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechUnavailable("espeak-ng did not write a WAV file")
    rate = int.from_bytes(data[24:28], "little")
    start = data.find(b"data", 12) + 8
    body = data[start:]
    samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float32)
    return rate, samples / 32768.0


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Linear interpolation: plenty for speech that is only ever listened to by an ASR."""
    if rate == target or not len(samples):
        return samples.astype(np.float32)
    n = int(len(samples) * target / rate)
    return np.interp(np.arange(n) * (rate / target), np.arange(len(samples)),
                     samples).astype(np.float32)


class Speech:
    """espeak-ng behind a per-video LRU cache."""

    def __init__(self, binary: str = "espeak-ng", timeout_s: float = 20.0,
                 cache_size: int = 16) -> None:
        self.binary, self.timeout_s, self.cache_size = binary, timeout_s, cache_size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # a capture thread and the shell may ask at once

    def synthesise(self, text: str, words_per_minute: int) -> np.ndarray:
        path = shutil.which(self.binary)
        if path is None:
            raise SpeechUnavailable(f"{self.binary} is missing: install it "
                                    "(apt-get install -y espeak-ng)")
        try:
            done = subprocess.run(
                [path, "--stdout", "-v", "en", "-s", str(words_per_minute), "--stdin"],
                input=text.encode("utf-8"), capture_output=True, timeout=self.timeout_s,
                check=True)
        except (subprocess.SubprocessError, OSError) as error:
            raise SpeechUnavailable(f"{self.binary} failed: {error}") from error
        rate, samples = parse_wav(done.stdout)
        return resample(samples, rate)

    def for_video(self, video: int, text: str, words_per_minute: int) -> np.ndarray:
        with self._lock:
            return self._cached(video, text, words_per_minute)

    def _cached(self, video: int, text: str, words_per_minute: int) -> np.ndarray:
        if video in self._cache:
            self._cache.move_to_end(video)
            return self._cache[video]
        speech = self.synthesise(text, words_per_minute)
        peak = float(np.abs(speech).max()) if len(speech) else 0.0
        if peak > 0:
            speech *= SPEECH_LEVEL / peak
        self._cache[video] = speech
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return speech


class Soundtrack:
    def __init__(self, catalogue: Catalogue, speech: Speech | None = None) -> None:
        self.catalogue = catalogue
        self.speech = speech or Speech()

    def duration(self, video: int) -> float:
        return float(self.catalogue.video_duration[video])

    def _pace(self, video: int, text: str) -> int:
        """Words per minute that fit the transcript into the video, within a natural range."""
        room = max(self.duration(video) - SPEECH_START_S - 0.5, 1.0)
        return int(np.clip(len(text.split()) * 60 / room, 160, 320))

    def voice(self, video: int) -> np.ndarray:
        """The video's speech at 48 kHz, mono float, starting at SPEECH_START_S."""
        text = self.catalogue.text(video).transcript
        return self.speech.for_video(video, text, self._pace(video, text))

    def speech_span(self, video: int) -> tuple[float, float]:
        """Where the voice is, in seconds from the video's start (cut at its end)."""
        end = SPEECH_START_S + len(self.voice(video)) / SAMPLE_RATE
        return SPEECH_START_S, min(end, self.duration(video))

    def _music(self, video: int, t: np.ndarray) -> np.ndarray:
        """(n, 2) chord with a pulse: root from the main category, mode and tempo from the sub."""
        sub = int(self.catalogue.video_sub[video])
        main = self.catalogue.taxonomy.sub_main[sub]
        root = 110.0 * 2 ** ((main % 12) / 12)
        third = 3 if sub % 2 else 4
        beat = 60.0 / (80 + (sub % 6) * 12)
        pulse = (0.4 + 0.6 * np.exp(-(t % beat) / 0.12)) * (MUSIC_LEVEL / 3)

        def chord(at: np.ndarray) -> np.ndarray:
            return sum(np.sin(2 * np.pi * root * 2 ** (step / 12) * at) for step in (0, third, 7))

        # the right channel half a millisecond late: a little stereo width
        return np.stack([chord(t) * pulse, chord(t - 0.0005) * pulse], axis=1)

    def audio(self, video: int, start_s: float, frames: int) -> np.ndarray:
        """(frames, 2) int16 of the video's sound from start_s seconds after it appeared."""
        duration = self.duration(video)
        first = int(round(start_s * SAMPLE_RATE))
        index = (first + np.arange(frames)) % int(duration * SAMPLE_RATE)  # the video loops
        t = index / SAMPLE_RATE
        mix = self._music(video, t)
        voice = self.voice(video)
        offset = index - int(SPEECH_START_S * SAMPLE_RATE)
        inside = (offset >= 0) & (offset < len(voice))
        mix[inside] += voice[offset[inside], None]
        return (np.clip(mix, -1, 1) * 32767).astype(np.int16)


def silence(frames: int) -> np.ndarray:
    return np.zeros((frames, 2), np.int16)


class AudioCapture:
    """What a capture of the phone's output hears, read in consecutive chunks (for a scrcpy
    audio stream). It follows the video on screen: continuous while the same video plays,
    jumping to the new video's position when the screen changes or drifts > 0.25 s."""

    def __init__(self, soundtrack: Soundtrack,
                 media: Callable[[], tuple[int | None, float]]) -> None:
        self.soundtrack, self._media = soundtrack, media
        self._video: int | None = None
        self._cursor = 0.0

    def read(self, frames: int) -> np.ndarray:
        video, position = self._media()
        if video is None:
            self._video = None
            return silence(frames)
        if video != self._video or abs(self._cursor - position) > 0.25:
            self._video, self._cursor = video, position
        chunk = self.soundtrack.audio(video, self._cursor, frames)
        self._cursor += frames / SAMPLE_RATE
        return chunk
