"""Reading the YAML files users write, and turning validation failures into one-line errors.

Every user-written file (job, persona, platform profile) goes through here, so each bad file
is reported the same way: the file, the dotted key, the reason, and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bubblescope.errors import ConfigError


def read_mapping(path: Path, error: type[ConfigError], what: str) -> dict[str, Any]:
    """The mapping a YAML (or JSON) file holds; `error` names `path` on any failure."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} ({exc.strerror}); check the path",
                    source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start}); save the {what} as UTF-8",
                    source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {str(exc).splitlines()[0]}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise error(f"a {what} holds one mapping of keys", source=str(path))
    return data


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model accepts at `loc` (a path of field names)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return sorted(model.model_fields)


def explain(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, reason) for the first error pydantic found."""
    error = exc.errors()[0]
    loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    key = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return key, "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    if error["type"] == "missing":
        return key, "required key is missing"
    return key, error["msg"]


def validate(model: type[BaseModel], data: dict[str, Any], error: type[ConfigError],
             source: str, prefix: str = ""):
    """`model` built from `data`, or `error` naming the file and the first bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        key, reason = explain(exc, model)
        raise error(reason, source=source, key=f"{prefix}{key}") from exc
