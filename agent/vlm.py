"""Loading a Qwen2.5-VL checkpoint by path: the 7B in production, the tiny one in tests.

One function per thing loaded, and the same code for both sizes: only the path changes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from transformers import Qwen2_5_VLProcessor
from transformers.processing_utils import ProcessorMixin

from bubblescope.agent.errors import ModelLoadError

# Newer transformers save the image processor inside processor_config.json, older checkpoints
# (the 7B on the hub) in preprocessor_config.json: either will do.
REQUIRED_FILES = ("config.json", "tokenizer_config.json")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
# What the video processor shares with the image processor (the rest keeps its defaults).
VIDEO_SETTINGS = ("patch_size", "temporal_patch_size", "merge_size", "size", "image_mean",
                  "image_std", "do_rescale", "rescale_factor", "do_normalize", "do_convert_rgb",
                  "resample")


class FrameProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor for still frames only.

    transformers type-checks the video processor when it builds Qwen2.5-VL's processor, and
    the video processor needs torchvision, which CPU-only installs lack. Audits send frames,
    never clips, so this variant leaves the video processor out and is otherwise the same
    (token expansion, chat template, saved files).
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def to_dict(self) -> dict:
        # Saved as the stock class, so the folder reads as any Qwen2.5-VL checkpoint; the stock
        # AutoProcessor (vLLM's too) also needs the video processor's file, which this class
        # does not write: `ensure_video_processor` does.
        return {**super().to_dict(), "processor_class": "Qwen2_5_VLProcessor"}


def ensure_video_processor(path: str | Path) -> Path:
    """The folder's `video_preprocessor_config.json`, written from its image processor's
    settings when missing. Qwen2.5-VL's stock processor is built with a video processor, so
    `AutoProcessor` (in vLLM and in transformers) fails on a folder without one; audits send
    no video, so its only job is to exist and agree with the image processor."""
    folder = Path(path)
    target = folder / VIDEO_PROCESSOR_FILE
    if target.is_file():
        return target
    image = _image_processor_settings(folder)
    settings = {key: image[key] for key in VIDEO_SETTINGS if key in image}
    target.write_text(json.dumps({"video_processor_type": "Qwen2VLVideoProcessor",
                                  "processor_class": "Qwen2_5_VLProcessor", **settings},
                                 indent=2), "utf-8")
    return target


def _image_processor_settings(folder: Path) -> dict:
    for name in PROCESSOR_FILES:
        if (folder / name).is_file():
            data = json.loads((folder / name).read_text("utf-8"))
            return data.get("image_processor", data)
    raise ModelLoadError(f"{folder}: no image processor ({' or '.join(PROCESSOR_FILES)})")


def _has_torchvision() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def check_model_dir(path: str | Path) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: no such model folder; give the path of a Qwen2.5-VL "
                             "checkpoint (or build the tiny one: bubblescope model tiny)")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in PROCESSOR_FILES):
        missing.append(" or ".join(PROCESSOR_FILES))
    if missing:
        raise ModelLoadError(f"{folder}: not a Qwen2.5-VL checkpoint, missing {', '.join(missing)}")
    return folder


def load_processor(path: str | Path) -> Qwen2_5_VLProcessor:
    folder = check_model_dir(path)
    if _has_torchvision():
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(folder)
    return FrameProcessor.from_pretrained(folder)


def load_model(path: str | Path, *, dtype: str = "auto", device: str = "cpu"):
    """The model for inference (eval mode) or training, on `device`."""
    from transformers import AutoModelForImageTextToText

    folder = check_model_dir(path)
    try:
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"{folder}: cannot load the model: {error}") from error
    # transformers types `to` through a decorator whose signature mypy reads as (model)
    return model.to(device)  # type: ignore[arg-type]
