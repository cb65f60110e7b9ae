"""Reading the YAML files users write, and turning validation failures into one-line errors.

Every user-written file (job, persona, platform profile) goes through here, so each bad file
is reported the same way: the file, the dotted key, the reason, and what is allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from bubblescope.errors import ConfigError


def read_text(path: Path, error: type[ConfigError], what: str) -> str:
    """The UTF-8 text of `path`; `error` names the file when it cannot be read or decoded."""
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} ({exc.strerror}); check the path",
                    source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start}); save the {what} as UTF-8",
                    source=str(path)) from exc


def read_mapping(path: Path, error: type[ConfigError], what: str) -> dict[str, Any]:
    """The mapping a YAML (or JSON) file holds; `error` names `path` on any failure."""
    text = read_text(path, error, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {str(exc).splitlines()[0]}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise error(f"a {what} holds one mapping of keys", source=str(path))
    return data


def read_json(path: Path, error: type[ConfigError], what: str) -> Any:
    """The value a JSON file holds; `error` names `path` on any failure."""
    text = read_text(path, error, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON: {exc}", source=str(path)) from exc


def _models(field: Any) -> list[type[BaseModel]]:
    """The models a field holds: one, or the variants of a union."""
    annotation = getattr(field, "annotation", None)
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


def _variant(field: Any, tag: str) -> type[BaseModel] | None:
    """The variant of a discriminated union `field` that `tag` names, if `tag` is one."""
    name = getattr(field, "discriminator", None)
    if not isinstance(name, str):
        return None
    for model in _models(field):
        if tag in get_args(model.model_fields[name].annotation):
            return model
    return None


def _walk(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """`loc` without the union tags pydantic puts in it, and the model at its end."""
    clean: list = []
    current: type[BaseModel] | None = model
    parts = list(loc)
    while parts and current is not None:
        part = parts.pop(0)
        clean.append(part)
        field = current.model_fields.get(str(part))
        candidates = _models(field)
        chosen = _variant(field, str(parts[0])) if parts else None
        if chosen is not None:
            parts.pop(0)  # the tag: not a key the user wrote
            current = chosen
        else:
            current = candidates[0] if candidates else None
    return (*clean, *parts), current


def explain(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, reason) for the first error pydantic found."""
    error = exc.errors()[0]
    raw = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    loc, _ = _walk(model, raw)
    key = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        _, parent = _walk(model, raw[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
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
