"""Audio to transcript: resampling, silero-vad segments of the virtual phone's espeak speech,
the tiny locally built Whisper loaded as a real checkpoint would be, and the pipeline that
ties them together per video."""

from __future__ import annotations

import logging
import math
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from bubblescope.errors import ConfigError
from bubblescope.perception.errors import AudioFormatError, PerceptionError, SpeechModelError
from bubblescope.perception.speech import (
    NullRecognizer,
    SpeechRecognizer,
    TranscriptPipeline,
)
from bubblescope.perception.tiny_whisper import build_tiny_whisper
from bubblescope.perception.vad import (
    VAD_RATE,
    Decimator,
    SpeechSegment,
    SpeechSegmenter,
    VadConfig,
    VadModel,
    downmix,
    load_vad_model,
    to_vad_rate,
)
from bubblescope.perception.whisper_asr import WhisperOptions, WhisperRecognizer
from bubblescope.sim.android.phone import VirtualPhone
from bubblescope.sim.android.soundtrack import (
    SAMPLE_RATE,
    SPEECH_START_S,
    Soundtrack,
    Speech,
)
from bubblescope.sim.catalogue import build_catalogue
from bubblescope.sim.in_process_device import SimWorld

log = logging.getLogger(__name__)
CHUNK = 1024  # frames per scrcpy audio packet
MAX_TOKENS = 8

def _require_espeak(test):
    """The virtual phone's speech needs espeak-ng; make test installs it, so a missing one
    fails the test with the fix rather than skipping it."""
    def wrapped(*args, **kwargs):
        if shutil.which("espeak-ng") is None:
            pytest.fail("espeak-ng not found: install Debian's espeak-ng (make test does it)")
        return test(*args, **kwargs)
    wrapped.__name__, wrapped.__doc__ = test.__name__, test.__doc__
    wrapped.__wrapped__ = test
    return wrapped


needs_espeak = _require_espeak


class Mute(Speech):
    """A voice that says nothing: the soundtrack alone."""

    def for_video(self, video: int, text: str, words_per_minute: int) -> np.ndarray:
        return np.zeros(0, np.float32)


@pytest.fixture(scope="module")
def soundtrack() -> Soundtrack:
    return Soundtrack(build_catalogue(SimWorld().catalogue))


@pytest.fixture(scope="module")
def vad_model() -> VadModel:
    return load_vad_model()


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="module")
def recognizer(tiny_path: Path) -> WhisperRecognizer:
    return WhisperRecognizer(tiny_path, WhisperOptions(max_new_tokens=MAX_TOKENS))


def short_videos(soundtrack: Soundtrack, count: int) -> list[int]:
    """Videos long enough to hold their speech and a pause after it, shortest first."""
    durations = soundtrack.catalogue.video_duration[:400]
    fits = [int(v) for v in np.argsort(durations) if durations[v] > 14.5]
    return fits[:count]


def video_audio(soundtrack: Soundtrack, video: int) -> np.ndarray:
    """The video's sound up to 1.5 s after its speech ends, as the phone plays it."""
    _, end = soundtrack.speech_span(video)
    return soundtrack.audio(video, 0.0, int(min(end + 1.5, soundtrack.duration(video))
                                            * SAMPLE_RATE))


def segment_all(pcm: np.ndarray, model: VadModel, chunk: int | None = None,
                config: VadConfig | None = None, pts_us: int = 0) -> list[SpeechSegment]:
    segmenter = SpeechSegmenter(config, model=model)
    step = chunk or len(pcm)
    for start in range(0, len(pcm), step):
        segmenter.feed(pcm[start:start + step], pts_us + start * 1_000_000 // SAMPLE_RATE)
    return segmenter.flush()


def tone(frequency: float, seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * frequency * t) * 32767).astype(np.int16)
    return np.stack([wave, wave], axis=1)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


# resampling ------------------------------------------------------------------------------
def test_a_tone_keeps_its_pitch_and_chunks_leave_no_trace() -> None:
    pcm = tone(440.0, 2.0)
    mono = to_vad_rate(pcm)
    assert mono.dtype == np.float32 and len(mono) == math.ceil(len(pcm) / 3)
    assert abs(peak_hz(mono, VAD_RATE) - 440.0) < 1.0
    assert np.sqrt(np.mean(mono[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    np.testing.assert_allclose(mono, resample_poly(downmix(pcm), 1, 3), atol=1e-5)
    decimator, sizes, out, start = Decimator(), [1, 7, 1024, 333, 5000], [], 0
    while start < len(pcm):
        size = sizes[len(out) % len(sizes)]
        out.append(decimator.feed(downmix(pcm[start:start + size])))
        start += size
    np.testing.assert_array_equal(np.concatenate([*out, decimator.flush()]), mono)


def test_content_above_8khz_is_filtered_not_folded() -> None:
    aliased = to_vad_rate(tone(10_000.0, 1.0))  # would fold to 6 kHz without the low-pass
    assert np.sqrt(np.mean(aliased[500:-500] ** 2)) < 0.01


def test_audio_in_the_wrong_format_is_refused() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        downmix(np.zeros((10, 2), np.float32))
    with pytest.raises(AudioFormatError, match="whole multiple"):
        Decimator(44_100, VAD_RATE)
    with pytest.raises(AudioFormatError, match="float32"):
        NullRecognizer().transcribe(np.zeros((10, 2), np.float32))
    assert isinstance(AudioFormatError("x"), PerceptionError)


# voice activity --------------------------------------------------------------------------
@needs_espeak
def test_vad_finds_the_spoken_transcript_where_it_is(soundtrack: Soundtrack,
                                                     vad_model: VadModel) -> None:
    for video in short_videos(soundtrack, 3):
        pcm = video_audio(soundtrack, video)
        start = time.perf_counter()
        segments = segment_all(pcm, vad_model)
        per_s = (time.perf_counter() - start) / (len(pcm) / SAMPLE_RATE) * 1000
        log.info("vad: %.1f ms per second of audio", per_s)
        print(f"vad: {per_s:.1f} ms per second of audio")
        begin, end = soundtrack.speech_span(video)
        assert segments, f"no speech found in video {video}"
        assert abs(segments[0].start_s - begin) < 0.3
        assert end - 1.0 < segments[-1].end_s < end + 0.3
        spoken = sum(s.end_s - s.start_s for s in segments)
        assert spoken > 0.7 * (end - begin)
        for segment in segments:
            assert segment.final and segment.audio.dtype == np.float32
            assert len(segment.audio) == round((segment.end_s - segment.start_s) * VAD_RATE)


@needs_espeak
def test_no_speech_in_music_or_silence(soundtrack: Soundtrack, vad_model: VadModel) -> None:
    music = Soundtrack(soundtrack.catalogue, Mute())
    for video in short_videos(soundtrack, 3):
        pcm = music.audio(video, 0.0, 12 * SAMPLE_RATE)
        assert np.abs(pcm).max() > 0
        assert segment_all(pcm, vad_model) == []
    assert segment_all(np.zeros((5 * SAMPLE_RATE, 2), np.int16), vad_model) == []


@needs_espeak
def test_a_stream_in_scrcpy_chunks_matches_the_whole_recording(soundtrack: Soundtrack,
                                                               vad_model: VadModel) -> None:
    from silero_vad import get_speech_timestamps

    pcm = video_audio(soundtrack, short_videos(soundtrack, 1)[0])
    whole = segment_all(pcm, vad_model, pts_us=5_000_000)
    streamed = segment_all(pcm, vad_model, chunk=CHUNK, pts_us=5_000_000)
    assert [(s.start_s, s.end_s) for s in streamed] == [(s.start_s, s.end_s) for s in whole]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(streamed, whole, strict=True))
    config = VadConfig()
    reference = get_speech_timestamps(
        to_vad_rate(pcm), vad_model, threshold=config.threshold,
        min_speech_duration_ms=config.min_speech_ms, max_speech_duration_s=config.max_speech_s,
        min_silence_duration_ms=config.min_silence_ms, speech_pad_ms=config.speech_pad_ms)
    assert [(5 + r["start"] / VAD_RATE, 5 + r["end"] / VAD_RATE) for r in reference] == [
        (s.start_s, s.end_s) for s in whole]


@needs_espeak
def test_running_speech_is_open_until_a_pause_ends_it(soundtrack: Soundtrack,
                                                      vad_model: VadModel) -> None:
    video = short_videos(soundtrack, 1)[0]
    pcm = video_audio(soundtrack, video)
    segmenter = SpeechSegmenter(model=vad_model)
    middle = int(4.0 * SAMPLE_RATE)
    segmenter.feed(pcm[:middle], 0)
    *_, running = segmenter.segments()
    assert not running.final and running.end_s == pytest.approx(segmenter.heard_s, abs=0.05)
    assert running not in segmenter.segments_until(100.0)
    segmenter.feed(pcm[middle:], middle * 1_000_000 // SAMPLE_RATE)
    _, end = soundtrack.speech_span(video)
    finished = segmenter.segments_until(100.0)
    assert finished and finished[-1].final and finished[-1].end_s < end + 0.3
    assert segmenter.segments_until(finished[-1].end_s - 0.01) == finished[:-1]
    segmenter.flush()
    with pytest.raises(PerceptionError, match="reset"):
        segmenter.feed(pcm[:CHUNK], 0)
    segmenter.reset()
    assert segmenter.segments() == [] and segmenter.heard_s == 0


def test_memory_stays_bounded_on_a_long_stream(vad_model: VadModel) -> None:
    config = VadConfig(max_speech_s=2.0, max_window_s=5.0)
    segmenter = SpeechSegmenter(config, model=vad_model)
    noise = (np.random.default_rng(0).standard_normal((SAMPLE_RATE, 2)) * 300).astype(np.int16)
    for second in range(20):
        segmenter.feed(noise, second * 1_000_000)
    assert segmenter.heard_s == pytest.approx(20.0, abs=0.05)
    assert segmenter.kept_s <= 5.0
    assert all(s.start_s >= 14.9 for s in segmenter.segments())


def test_vad_leaves_torch_threads_as_it_found_them() -> None:
    """silero-vad's import sets torch to one thread for the whole process (in this process
    importing silero_vad already did); the segmenter must not, or Whisper would crawl."""
    script = (
        "import numpy as np, torch\n"
        "torch.set_num_threads(2)\n"
        "from bubblescope.perception.vad import SpeechSegmenter\n"
        "segmenter = SpeechSegmenter()\n"
        "segmenter.feed(np.ones((48000, 2), np.int16), 0)\n"
        "segmenter.segments()\n"
        "print(torch.get_num_threads())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["2"]


# speech recognition ----------------------------------------------------------------------
def test_tiny_whisper_is_a_whisper_checkpoint_built_deterministically(tiny_path: Path,
                                                                       tmp_path: Path) -> None:
    from transformers import WhisperProcessor

    again = build_tiny_whisper(tmp_path / "again")
    for name in ("config.json", "generation_config.json", "model.safetensors",
                 "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (again / name).read_bytes() == (tiny_path / name).read_bytes(), name
    tokenizer = WhisperProcessor.from_pretrained(tiny_path, local_files_only=True).tokenizer
    ids = tokenizer.convert_tokens_to_ids
    assert ids("<|en|>") == ids("<|startoftranscript|>") + 1
    assert ids("<|0.00|>") == ids("<|notimestamps|>") + 1 == tokenizer.all_special_ids[-1] + 1
    tokenizer.set_prefix_tokens(language="en", task="transcribe")
    encoded = tokenizer("funny cooking vlog").input_ids
    assert encoded[:4] == [ids(t) for t in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>",
                                            "<|notimestamps|>")]
    assert tokenizer.decode(encoded, skip_special_tokens=True) == "funny cooking vlog"


@needs_espeak
def test_whisper_recognizer_transcribes_a_segment(soundtrack: Soundtrack, vad_model: VadModel,
                                                  recognizer: WhisperRecognizer) -> None:
    segment = segment_all(video_audio(soundtrack, short_videos(soundtrack, 1)[0]), vad_model)[0]
    start = time.perf_counter()
    text = recognizer.transcribe(segment.audio)
    elapsed = time.perf_counter() - start
    log.info("tiny whisper: %.2f s for a %.1f s segment", elapsed, segment.end_s - segment.start_s)
    print(f"tiny whisper: {elapsed:.2f} s for a {segment.end_s - segment.start_s:.1f} s segment")
    assert isinstance(text, str) and text and len(text) < 40 * MAX_TOKENS
    assert recognizer.transcribe(segment.audio) == text  # greedy: the same every time
    assert recognizer.transcribe(np.zeros(0, np.float32)) == ""
    assert recognizer.name == f"whisper:{recognizer.path.name}"


def test_audio_longer_than_whisper_hears_is_split(recognizer: WhisperRecognizer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    windows: list[int] = []
    monkeypatch.setattr(recognizer, "_generate", lambda audio: windows.append(len(audio)) or "x")
    assert recognizer.transcribe(np.zeros(65 * VAD_RATE, np.float32)) == "x x x"
    assert windows == [30 * VAD_RATE, 30 * VAD_RATE, 5 * VAD_RATE]


def test_loading_never_reaches_for_the_network(tiny_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    recognizer = WhisperRecognizer(tiny_path, WhisperOptions(max_new_tokens=2))
    assert isinstance(recognizer.transcribe(np.zeros(VAD_RATE, np.float32)), str)


def test_a_wrong_model_path_fails_at_construction_in_one_line(tiny_path: Path,
                                                              tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(SpeechModelError, match="does not exist") as caught:
        WhisperRecognizer(missing)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)
    partial = tmp_path / "partial"
    shutil.copytree(tiny_path, partial)
    (partial / "model.safetensors").unlink()
    (partial / "tokenizer.json").unlink()
    with pytest.raises(SpeechModelError) as caught:
        WhisperRecognizer(partial)
    message = str(caught.value)
    assert str(partial) in message and "model.safetensors" in message and "\n" not in message
    assert "tokenizer.json" in message and "config.json or" not in message
    assert isinstance(caught.value, ConfigError)
    assert str(pickle.loads(pickle.dumps(caught.value))) == message
    (partial / "model.safetensors").write_bytes(b"not weights")
    (partial / "tokenizer.json").write_text((tiny_path / "tokenizer.json").read_text())
    with pytest.raises(SpeechModelError, match="does not load") as caught:
        WhisperRecognizer(partial)
    assert "\n" not in str(caught.value)
    with pytest.raises(SpeechModelError, match="language"):
        WhisperRecognizer(tiny_path, WhisperOptions(language="klingon"))


# the pipeline ----------------------------------------------------------------------------
class Numbering(SpeechRecognizer):
    """Names each recognition by its order, to see which segments are recognised again."""

    name = "numbering"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: np.ndarray) -> str:
        self.calls += 1
        return f"s{self.calls}"


@needs_espeak
def test_pipeline_recognises_each_finished_segment_once(soundtrack: Soundtrack,
                                                        vad_model: VadModel) -> None:
    pcm = video_audio(soundtrack, short_videos(soundtrack, 1)[0])
    recognizer = Numbering()
    pipeline = TranscriptPipeline(SpeechSegmenter(model=vad_model), recognizer)
    assert pipeline.transcript() == "" and recognizer.calls == 0
    middle = 4 * SAMPLE_RATE
    pipeline.feed(pcm[:middle], 0)
    assert pipeline.transcript() == "s1" and pipeline.transcript() == "s2"  # still speaking
    pipeline.feed(pcm[middle:], middle * 1_000_000 // SAMPLE_RATE)
    first = pipeline.transcript()
    assert pipeline.transcript() == first  # finished: not recognised again
    assert pipeline.stats()["segments"] == len(first.split())
    pipeline.reset()
    assert pipeline.transcript() == "" and pipeline.segmenter.segments() == []


@needs_espeak
def test_pipeline_on_the_virtual_phone_transcribes_and_resets_per_video(
        vad_model: VadModel, recognizer: WhisperRecognizer) -> None:
    phone = VirtualPhone("sim-9", SimWorld(), "bilibili-like", "acct-9", seed=4, time_warp=1)
    phone.start_app()
    pipeline = TranscriptPipeline(SpeechSegmenter(model=vad_model), recognizer)
    _, end = phone.soundtrack.speech_span(phone.app_state().video)
    pts_us = 7_000_000
    for first in range(0, int((end + 1.0) * SAMPLE_RATE), CHUNK):
        pipeline.feed(phone.audio(first / SAMPLE_RATE, CHUNK), pts_us)
        pts_us += CHUNK * 1_000_000 // SAMPLE_RATE
    start = time.perf_counter()
    text = pipeline.transcript()
    log.info("transcript of %.1f s of speech in %.2f s", end - SPEECH_START_S,
             time.perf_counter() - start)
    assert isinstance(text, str) and text
    assert pipeline.stats()["segments"] >= 1
    assert all(s.start_s >= 7.0 for s in pipeline.segmenter.segments())
    pipeline.reset()
    assert pipeline.transcript() == ""
    pipeline.feed(np.zeros((SAMPLE_RATE, 2), np.int16), pts_us)
    assert pipeline.transcript() == ""
    assert TranscriptPipeline(SpeechSegmenter(model=vad_model), NullRecognizer()).transcript() == ""
