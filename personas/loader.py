"""Reading and writing persona files (YAML or JSON), with one-line errors."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from .errors import PersonaFileError
from .schema import Persona


def load_persona(path: str | Path) -> Persona:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise PersonaFileError(f"cannot read persona file ({exc.strerror}); check the path",
                               source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise PersonaFileError(f"not valid YAML/JSON: {str(exc).splitlines()[0]}",
                               source=str(path)) from exc
    if not isinstance(data, dict):
        raise PersonaFileError("a persona file holds one mapping", source=str(path))
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise PersonaFileError(f"{error['msg']}", source=str(path), key=key) from exc


class _FlowListDumper(yaml.SafeDumper):
    """Lists of numbers on one line: persona files carry long duration samples."""


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flow = bool(data) and all(isinstance(v, int | float) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowListDumper.add_representer(list, _represent_list)


def persona_to_yaml(persona: Persona) -> str:
    data = persona.model_dump(mode="json")
    return yaml.dump(data, Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True, width=100)


def save_persona(persona: Persona, path: str | Path) -> None:
    Path(path).write_text(persona_to_yaml(persona), encoding="utf-8")
