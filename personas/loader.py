"""Reading and writing persona files (YAML or JSON), with one-line errors."""

from __future__ import annotations

from pathlib import Path

import yaml

from bubblescope.config_files import read_mapping, validate
from bubblescope.personas.errors import PersonaFileError
from bubblescope.personas.schema import Persona


def load_persona(path: str | Path) -> Persona:
    path = Path(path)
    data = read_mapping(path, PersonaFileError, "persona file")
    return validate(Persona, data, PersonaFileError, str(path))


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
    try:
        Path(path).write_text(persona_to_yaml(persona), encoding="utf-8")
    except OSError as exc:
        raise PersonaFileError(f"cannot write the persona file ({exc.strerror}); pick a "
                               "writable --out", source=str(path)) from exc
