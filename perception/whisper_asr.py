"""Speech recognition with a transformers Whisper checkpoint from a local folder, on the CPU.

There is no model hub on these machines, so the model always comes from a folder: a real
checkpoint (e.g. openai/whisper-small, downloaded elsewhere and copied in) in production, the
tiny model of `tiny_whisper` in tests; only the path differs. The folder is checked and the
model loaded when the recogniser is built, so a wrong path fails the job at start-up with one
line naming the folder and what it lacks, never in the middle of a run. `local_files_only`
keeps transformers off the network whatever the HF_* variables say.

Decoding is greedy with a cap on new tokens per 30 s window (Whisper's input length), which
bounds both the time per segment and the damage a model that never stops can do.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bubblescope.perception.errors import SpeechModelError
from bubblescope.perception.speech import VAD_RATE, SpeechRecognizer, check_audio

log = logging.getLogger(__name__)

# Each entry: alternatives, any one of which will do.
REQUIRED_FILES: tuple[tuple[str, ...], ...] = (
    ("config.json",),
    ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
     "pytorch_model.bin.index.json"),
    ("preprocessor_config.json", "processor_config.json"),
    ("tokenizer.json", "vocab.json"),
)


@dataclass(frozen=True)
class WhisperOptions:
    language: str | None = "en"  # spoken language ("en" or "english"); None: let Whisper detect it
    task: Literal["transcribe", "translate"] = "transcribe"  # translate: English text of any speech
    max_new_tokens: int = 128  # cap on generated tokens per 30 s window (Whisper allows < 448)

    def __post_init__(self) -> None:
        if self.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', got {self.task!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")


def check_checkpoint(path: Path | str) -> Path:
    """The resolved folder, or a one-line error naming it and the files it lacks."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise SpeechModelError(f"Whisper model folder {folder} does not exist (or is not a "
                               "folder): point the speech model path at a local checkpoint")
    missing = [" or ".join(names) for names in REQUIRED_FILES
               if not any((folder / name).is_file() for name in names)]
    if missing:
        raise SpeechModelError(f"Whisper model folder {folder} is incomplete: missing "
                               f"{'; '.join(missing)}")
    model_type = _model_type(folder)
    if model_type != "whisper":
        raise SpeechModelError(f"model folder {folder} holds a {model_type!r} model, not whisper")
    return folder


def _model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text("utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as e:
        raise SpeechModelError(f"Whisper model folder {folder}: config.json is unreadable: "
                               f"{e}") from e


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


class WhisperRecognizer(SpeechRecognizer):
    """A Whisper checkpoint loaded once; one transcription at a time."""

    def __init__(self, path: Path | str, options: WhisperOptions | None = None) -> None:
        self.path = check_checkpoint(path)
        self.options = options or WhisperOptions()
        self.name = f"whisper:{self.path.name}"
        self._lock = threading.Lock()
        start = time.perf_counter()
        self._processor, self._model = self._load()
        self._window = int(self._processor.feature_extractor.n_samples)  # 30 s at 16 kHz
        self._kwargs = self._generate_kwargs()
        self._check()
        log.info("speech recogniser %s loaded from %s in %.1f s", self.name, self.path,
                 time.perf_counter() - start)

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        try:
            processor = WhisperProcessor.from_pretrained(self.path, local_files_only=True)
            model = WhisperForConditionalGeneration.from_pretrained(
                self.path, local_files_only=True, dtype=torch.float32)
        except Exception as e:  # transformers raises many kinds; all mean an unusable folder
            raise SpeechModelError(f"Whisper model folder {self.path} does not load: "
                                   f"{_first_line(e)}") from e
        return processor, model.to("cpu").eval()

    def _generate_kwargs(self) -> dict[str, str]:
        """Language and task as generate() takes them; English-only checkpoints take neither."""
        language, task = self.options.language, self.options.task
        if getattr(self._model.generation_config, "is_multilingual", False):
            return {"task": task, **({"language": language} if language else {})}
        if task != "transcribe" or (language or "en").lower() not in ("en", "english"):
            raise SpeechModelError(f"Whisper model {self.path} is English-only: it cannot "
                                   f"{task} language {language!r}")
        return {}

    def _check(self) -> None:
        """Options the checkpoint cannot honour fail now, not on the first segment: a probe
        of 0.1 s of silence runs the whole path once."""
        limit = self._model.config.max_target_positions - 4  # room for the prompt tokens
        if self.options.max_new_tokens > limit:
            raise SpeechModelError(f"max_new_tokens {self.options.max_new_tokens} exceeds what "
                                   f"{self.path} can generate ({limit})")
        try:
            self._generate(np.zeros(VAD_RATE // 10, np.float32), max_new_tokens=1)
        except Exception as e:
            raise SpeechModelError(f"Whisper model {self.path} fails with language "
                                   f"{self.options.language!r}, task {self.options.task!r}: "
                                   f"{_first_line(e)}") from e

    def transcribe(self, audio: np.ndarray) -> str:
        check_audio(audio)
        if not len(audio):
            return ""
        with self._lock:
            texts = [self._generate(audio[start:start + self._window])
                     for start in range(0, len(audio), self._window)]
        return " ".join(text for text in texts if text)

    def _generate(self, audio: np.ndarray, max_new_tokens: int | None = None) -> str:
        import torch

        features = self._processor.feature_extractor(
            audio, sampling_rate=VAD_RATE, return_tensors="pt").input_features
        with torch.inference_mode():
            tokens = self._model.generate(
                features, generation_config=self._greedy(max_new_tokens),
                return_timestamps=False, force_unique_generate_call=True, **self._kwargs)
        return self._processor.tokenizer.decode(tokens[0], skip_special_tokens=True).strip()

    def _greedy(self, max_new_tokens: int | None) -> Any:
        """The checkpoint's generation config, greedy, capped at max_new_tokens new tokens.

        The cap goes in as max_length, which Whisper's generate extends by the prompt tokens
        itself; passing max_new_tokens beside a checkpoint's max_length (448 in every real one)
        would log a warning on every call."""
        config = copy.deepcopy(self._model.generation_config)
        config.do_sample, config.num_beams = False, 1
        config.max_new_tokens = None
        config.max_length = max_new_tokens or self.options.max_new_tokens
        return config
