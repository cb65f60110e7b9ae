"""The adapter registry: trained LoRA adapters by persona, where Serve loads them from.

Layout: `<adapters_dir>/<persona>/<name>/` holds PEFT's `adapter_config.json` and
`adapter_model.safetensors`, plus `bubblescope-adapter.json` (which base model, how it was
trained, the prompt spec it was trained with under "prompt", its metrics). A job that serves
an adapter with another prompt is refused at load (`check_prompt`). Registration copies into a temporary folder and renames it into place,
so a reader never sees half an adapter.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bubblescope.agent.errors import AdapterError
from bubblescope.agent.spec import PromptSpec

MANIFEST = "bubblescope-adapter.json"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def adapter_dir(adapters_dir: str | Path, persona: str, name: str) -> Path:
    return Path(adapters_dir).expanduser() / persona / name


def check_adapter(path: str | Path, persona: str = "") -> Path:
    """`path` if it holds a loadable adapter, else an error naming what is missing."""
    folder = Path(path).expanduser()
    who = f"persona {persona!r}: " if persona else ""
    if not folder.is_dir():
        raise AdapterError(f"{who}no adapter at {folder}; train one (bubblescope train sft) "
                           "or fix the adapter path")
    missing = [name for name in PEFT_FILES if not (folder / name).is_file()]
    if missing:
        raise AdapterError(f"{who}adapter {folder} is incomplete: missing {', '.join(missing)}")
    try:
        json.loads((folder / "adapter_config.json").read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise AdapterError(f"{who}adapter {folder}: adapter_config.json is corrupt "
                           f"({error})") from error
    return folder


def register_adapter(source: str | Path, adapters_dir: str | Path, persona: str, name: str,
                     manifest: dict, prompt: PromptSpec) -> Path:
    """Copy the trained adapter in `source` into the registry, with its manifest and the
    `prompt` it was trained with; returns its folder."""
    check_adapter(source, persona)
    target = adapter_dir(adapters_dir, persona, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{name}.{uuid.uuid4().hex[:8]}"
    shutil.copytree(source, staging)
    record = {**manifest, "persona": persona, "name": name,
              "prompt": prompt.model_dump(mode="json"),
              "registered_at": datetime.now(UTC).isoformat()}
    (staging / MANIFEST).write_text(json.dumps(record, indent=2, default=str), "utf-8")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def read_manifest(path: str | Path) -> dict:
    try:
        return json.loads((Path(path) / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def trained_prompt(path: str | Path) -> dict | None:
    """The prompt spec the adapter at `path` was trained with, as its manifest records it
    ("prompt"; adapters registered before that key record it in their training "config")."""
    manifest = read_manifest(path)
    prompt = manifest.get("prompt", manifest.get("config", {}).get("prompt"))
    return prompt if isinstance(prompt, dict) else None


def check_prompt(path: str | Path, persona: str, prompt: PromptSpec) -> None:
    """Refuse to serve the adapter at `path` with a `prompt` other than its training one.

    An adapter with no record (made outside `bubblescope train`, or copied without its
    manifest) is accepted: nothing says what it expects, as before records were kept."""
    recorded = trained_prompt(path)
    if recorded is None:
        return
    trained = {**PromptSpec().model_dump(mode="json"), **recorded}
    served = prompt.model_dump(mode="json")
    differ = [f"{key} {trained.get(key)!r} (served {served.get(key)!r})"
              for key in sorted(trained.keys() | served.keys())
              if trained.get(key) != served.get(key)]
    if differ:
        raise AdapterError(f"persona {persona!r}: adapter {Path(path).expanduser()} was trained "
                           f"with another prompt: {', '.join(differ)}; set policy.agent.prompt "
                           "to the training prompt or retrain the adapter")
