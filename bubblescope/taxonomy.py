"""The two-level content taxonomy (PersonaAct's 25 main categories and their subcategories).

Categories are named ``"Main/Sub"`` with the English labels, as in the paper's Table 5.
The Chinese names are kept as aliases so that labels from Chinese sources resolve too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

SEPARATOR = "/"


@dataclass(frozen=True)
class Taxonomy:
    mains: tuple[str, ...]
    subs: tuple[str, ...]  # "Main/Sub", grouped by main in file order
    sub_main: tuple[int, ...]  # index into mains for each sub
    aliases: dict[str, str] = field(default_factory=dict, compare=False)

    def main_of(self, category: str) -> str:
        return category.split(SEPARATOR, 1)[0]

    def resolve(self, name: str) -> str:
        """Map an English or Chinese main or "Main/Sub" label to its canonical English name."""
        if name in self.aliases:
            return self.aliases[name]
        raise KeyError(f"unknown category {name!r}")

    def level(self, category: str, level: str) -> str:
        return self.main_of(category) if level == "main" else category

    def labels(self, level: str) -> tuple[str, ...]:
        return self.mains if level == "main" else self.subs


def _parse(entries: list[dict]) -> Taxonomy:
    mains: list[str] = []
    subs: list[str] = []
    sub_main: list[int] = []
    aliases: dict[str, str] = {}
    for index, entry in enumerate(entries):
        main_en, main_zh = entry["main"]["en"], entry["main"]["zh"]
        mains.append(main_en)
        aliases[main_en] = aliases[main_zh] = main_en
        for sub in entry["sub"]:
            name = f"{main_en}{SEPARATOR}{sub['en']}"
            subs.append(name)
            sub_main.append(index)
            aliases[name] = aliases[f"{main_zh}{SEPARATOR}{sub['zh']}"] = name
    return Taxonomy(tuple(mains), tuple(subs), tuple(sub_main), aliases)


@cache
def load_taxonomy() -> Taxonomy:
    text = resources.files("bubblescope").joinpath("data/taxonomy.yaml").read_text("utf-8")
    return _parse(yaml.safe_load(text))
