"""Speech segments of a device's audio stream, found by silero-vad as the audio arrives.

The scrcpy audio stream gives 48 kHz stereo int16 chunks; silero-vad and Whisper want 16 kHz
mono float32. Chunks are mixed down and decimated by a polyphase FIR that keeps its state
across chunks, so chunk boundaries leave no trace. Each 512-sample window (32 ms) is scored
once, in order, by one silero model whose recurrent state carries over, and the scores are
turned into segments by silero's own `get_speech_timestamps_from_probs`: exactly what
`get_speech_timestamps` does on the whole recording, so a stream fed in small chunks yields
the same segments as the recording at once, without scoring any audio twice.

Memory is bounded twice: `reset()` drops everything when a new video starts, and within a
video only the last `max_window_s` of audio is kept.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.signal import firwin, upfirdn

from bubblescope.perception.errors import AudioFormatError, PerceptionError

VAD_RATE = 16_000  # what silero-vad and Whisper listen at
WINDOW = 512  # samples silero scores at a time at 16 kHz
CAPTURE_RATE = 48_000  # scrcpy's audio capture rate
SCORE_EVERY = 16  # windows (0.5 s) gathered before scoring: fewer, larger bursts of torch work
_THREADS_LOCK = threading.Lock()  # see _one_torch_thread


class VadModel(Protocol):
    """A silero-vad model: a speech probability per 512-sample window, state kept between."""

    def __call__(self, chunk: Any, sampling_rate: int) -> Any: ...

    def reset_states(self) -> None: ...


def _silero() -> Any:
    """The silero_vad package, imported without its side effect on torch.

    Importing silero_vad sets torch's process-wide thread count to 1; that would slow every
    other model in the worker (Whisper most of all), so the count is put back as it was.
    """
    import torch

    with _THREADS_LOCK:
        threads = torch.get_num_threads()
        try:
            import silero_vad
        except ImportError as e:
            raise PerceptionError("silero-vad is not installed: install the perception extra "
                             "(pip install 'bubblescope[perception]')") from e
        finally:
            torch.set_num_threads(threads)
    return silero_vad


@contextmanager
def _one_torch_thread() -> Iterator[Any]:
    """torch limited to one intra-op thread while silero scores, then as it was.

    The model is a tiny recurrent net run every 32 ms of audio: extra threads only add
    synchronisation, which on a busy machine made scoring 10 to 100 times slower (measured on
    2 cores: 20 ms per second of audio on one thread, 0.2 to 2 s on two). The setting is
    process-wide, so segmenters take turns under one lock and put back what they found.
    """
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                yield torch
        finally:
            torch.set_num_threads(before)


def load_vad_model() -> VadModel:
    """silero-vad's JIT model from the weights inside the installed package (no network)."""
    return _silero().load_silero_vad()


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5  # speech probability above which a window counts as speech
    min_speech_ms: int = 250  # shorter bursts (clicks, a beat of music) are dropped
    min_silence_ms: int = 300  # a pause this long ends a segment; shorter ones join words
    speech_pad_ms: int = 30  # margin added around each segment, as silero does
    max_speech_s: float = 28.0  # longer speech is cut, so a segment fits Whisper's 30 s window
    max_window_s: float = 120.0  # audio kept per video; older audio is forgotten

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0 <= self.speech_pad_ms < self.min_silence_ms:
            # a closed segment's padded end must stay short of the audio heard so far,
            # which is how an open segment is told from a closed one
            raise ValueError("speech_pad_ms must be >= 0 and below min_silence_ms")
        if self.max_window_s < 2 * self.max_speech_s:
            raise ValueError("max_window_s must hold at least two segments of max_speech_s")


@dataclass(frozen=True)
class SpeechSegment:
    start_s: float  # device time (scrcpy PTS clock) where the speech starts, seconds
    end_s: float
    audio: np.ndarray = field(repr=False, compare=False)  # float32 mono at 16 kHz
    final: bool = True  # False while the speech runs on at the end of the audio heard so far


def downmix(pcm: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] from int16 frames, (n, channels) or (n,)."""
    if pcm.dtype != np.int16 or pcm.ndim not in (1, 2):
        raise AudioFormatError(f"expected int16 PCM frames (n, channels), got {pcm.dtype} "
                               f"{pcm.shape}")
    samples = pcm.astype(np.float32) / 32768.0
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float32)


class Decimator:
    """Integer-factor downsampling with a linear-phase low-pass, fed in chunks.

    The filter is scipy's `resample_poly` design (Kaiser window, beta 5); `upfirdn` computes
    only the kept outputs. Half the filter length of zeros before the first sample and after
    the last (in `flush`) centre output j on input j * factor, so nothing is delayed.
    """

    def __init__(self, rate_in: int = CAPTURE_RATE, rate_out: int = VAD_RATE) -> None:
        if rate_in % rate_out:
            raise AudioFormatError(f"cannot decimate {rate_in} Hz to {rate_out} Hz: the input "
                                   "rate must be a whole multiple")
        self.factor = rate_in // rate_out
        half = 10 * self.factor
        self._taps = firwin(2 * half + 1, 1.0 / self.factor, window=("kaiser", 5.0))
        self._half = half
        self._buffer = np.zeros(half, np.float64)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        if self.factor == 1:
            return samples.astype(np.float32)
        self._buffer = np.concatenate([self._buffer, samples])
        count = (len(self._buffer) - len(self._taps)) // self.factor + 1
        if count <= 0:
            return np.zeros(0, np.float32)
        first = (len(self._taps) - 1) // self.factor  # the first output with a full history
        out = upfirdn(self._taps, self._buffer, 1, self.factor)[first:first + count]
        self._buffer = self._buffer[count * self.factor:]
        return out.astype(np.float32)

    def flush(self) -> np.ndarray:
        """The last outputs, as if the signal went on in silence."""
        if self.factor == 1:
            return np.zeros(0, np.float32)
        return self.feed(np.zeros(self._half, np.float64))


def to_vad_rate(pcm: np.ndarray, rate: int = CAPTURE_RATE) -> np.ndarray:
    """A whole recording as 16 kHz mono float32: what the segmenter hears, in one call."""
    decimator = Decimator(rate, VAD_RATE)
    return np.concatenate([decimator.feed(downmix(pcm)), decimator.flush()])


class SpeechSegmenter:
    """silero-vad over one device's audio stream, one video at a time.

    `feed` takes capture chunks as they arrive (the first chunk after `reset` sets the time
    origin; the stream is taken as gapless from there, as scrcpy's capture is);
    `segments_until(t)` gives the finished segments that ended by device time t, `segments()`
    everything so far including speech still running, `flush()` ends the stream. Safe to
    feed from the stream's reader thread while another thread reads segments.

    `model` defaults to a fresh silero model. silero is recurrent, so a model serves one
    segmenter at a time; pass one only to reuse it in turn (tests do, to load it once).
    """

    def __init__(self, config: VadConfig | None = None, model: VadModel | None = None,
                 rate: int = CAPTURE_RATE) -> None:
        self.config = config or VadConfig()
        self.rate = rate
        self._model = model if model is not None else load_vad_model()
        self._lock = threading.Lock()
        self._max_windows = int(self.config.max_window_s * VAD_RATE) // WINDOW
        self.reset()

    def reset(self) -> None:
        """Forget all audio: a new video starts."""
        with self._lock:
            self._model.reset_states()
            self._decimator = Decimator(self.rate, VAD_RATE)
            self._pending: list[np.ndarray] = []  # 16 kHz audio not yet scored
            self._pending_len = 0
            self._windows: deque[np.ndarray] = deque()
            self._probs: deque[float] = deque()
            self._dropped = 0  # windows forgotten from the front (max_window_s)
            self._origin_s: float | None = None
            self._tail = 0  # real samples in the last window once flushed (0: none padded)
            self._flushed = False

    def feed(self, pcm: np.ndarray, pts_us: int) -> None:
        """One chunk of capture frames, (n, channels) int16 at `rate`, starting at pts_us."""
        samples = downmix(pcm)
        with self._lock:
            if self._flushed:
                raise PerceptionError("audio fed after flush(): call reset() for the next video")
            if self._origin_s is None:
                self._origin_s = pts_us / 1e6
            self._append(self._decimator.feed(samples))
            if self._pending_len >= SCORE_EVERY * WINDOW:
                self._score()

    def flush(self) -> list[SpeechSegment]:
        """End of the stream: the remaining audio is scored and every segment is final."""
        with self._lock:
            if not self._flushed:
                self._append(self._decimator.flush())
                self._tail = self._pending_len % WINDOW
                if self._tail:  # silero pads the last window with zeros too
                    self._append(np.zeros(WINDOW - self._tail, np.float32))
                self._score()
                self._flushed = True
            return self._segments()

    def segments(self) -> list[SpeechSegment]:
        """Every segment heard so far; the last is not final while its speech runs on."""
        with self._lock:
            self._score()
            return self._segments()

    def segments_until(self, t_s: float) -> list[SpeechSegment]:
        """Finished segments that ended by device time t_s (seconds)."""
        return [s for s in self.segments() if s.final and s.end_s <= t_s]

    @property
    def heard_s(self) -> float:
        """Seconds of audio heard since the last reset (forgotten audio included)."""
        padding = WINDOW - self._tail if self._tail else 0  # flush's zeros are not heard
        scored = (self._dropped + len(self._probs)) * WINDOW
        return (scored + self._pending_len - padding) / VAD_RATE

    @property
    def kept_s(self) -> float:
        """Seconds of audio held in memory: at most `max_window_s`."""
        return len(self._windows) * WINDOW / VAD_RATE

    def _append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._pending.append(samples)
            self._pending_len += len(samples)

    def _score(self) -> None:
        """Score every whole window of pending audio, in order, on one torch thread."""
        whole = self._pending_len // WINDOW
        if not whole:
            return
        audio = np.concatenate(self._pending)
        rest = audio[whole * WINDOW:]
        self._pending, self._pending_len = ([rest] if len(rest) else []), len(rest)
        windows = audio[:whole * WINDOW].reshape(whole, WINDOW)
        with _one_torch_thread() as torch:
            for window in windows:
                self._probs.append(float(self._model(torch.from_numpy(window), VAD_RATE)))
                self._windows.append(window)
        while len(self._probs) > self._max_windows:
            self._probs.popleft()
            self._windows.popleft()
            self._dropped += 1

    def _segments(self) -> list[SpeechSegment]:
        if not self._probs:
            return []
        length = len(self._probs) * WINDOW - (WINDOW - self._tail if self._tail else 0)
        spans = _silero().get_speech_timestamps_from_probs(
            list(self._probs), sampling_rate=VAD_RATE, threshold=self.config.threshold,
            min_speech_duration_ms=self.config.min_speech_ms,
            max_speech_duration_s=self.config.max_speech_s,
            min_silence_duration_ms=self.config.min_silence_ms,
            speech_pad_ms=self.config.speech_pad_ms, audio_length_samples=length)
        audio = np.concatenate(self._windows)[:length]
        offset = (self._origin_s or 0.0) + self._dropped * WINDOW / VAD_RATE
        return [SpeechSegment(offset + span["start"] / VAD_RATE, offset + span["end"] / VAD_RATE,
                              audio[span["start"]:span["end"]].copy(),
                              self._flushed or span["end"] < length)
                for span in spans]
