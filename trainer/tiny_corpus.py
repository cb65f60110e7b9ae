"""The text the tiny model's tokenizer is trained on: our own, never a downloaded vocabulary.

What the agent will read and write: the simulated catalogue's titles, captions and
transcripts, the taxonomy (English names and Chinese aliases), persona profiles, the prompt's
fixed text and answers in the action grammar.
"""

from __future__ import annotations

from collections.abc import Iterator

from bubblescope.agent.action_grammar import format_action
from bubblescope.agent.prompt import SYSTEM, TASK
from bubblescope.contracts import Action
from bubblescope.taxonomy import load_taxonomy

DEFAULT_TINY_MODEL = "~/.cache/bubblescope/tiny-qwen2.5-vl"


def _catalogue_text(step: int) -> Iterator[str]:
    from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue
    from bubblescope.sim.feed_screen import feed_screen

    catalogue = build_catalogue(CatalogueConfig())
    for video in range(0, catalogue.n_videos, step):
        yield feed_screen(catalogue, video).text() + "\n" + catalogue.text(video).transcript


def _taxonomy_text() -> Iterator[str]:
    taxonomy = load_taxonomy()
    yield "\n".join(taxonomy.mains)
    yield "\n".join(taxonomy.subs)
    yield "\n".join(f"{name} {alias}" for alias, name in taxonomy.aliases.items())


def _answers() -> Iterator[str]:
    for tenths in range(0, 1200, 7):
        action = Action(watch_s=tenths / 10, like=tenths % 3 == 0,
                        comment="nice" if tenths % 11 == 0 else None,
                        share="a friend" if tenths % 13 == 0 else None)
        yield format_action(action, category="Food/Home Cooking")


def _personas() -> Iterator[str]:
    from bubblescope.sim.human import human_names, human_spec

    for name in human_names():
        spec = human_spec(name)
        yield spec.narrative + "\n" + "\n".join(f"{k}: {v}" for k, v in spec.traits.items())
    yield ("Your habits: median watch 5.4 s, mean 8.3 s, 27% of videos skipped within 3 s; you "
           "like 7.8%, comment on 0.3%, share 0.1%.\nWhat you watch most, and for how long:\n"
           "- Food: 47% of videos, median watch 8.9 s, like 12%")


def tiny_corpus(catalogue_step: int = 5) -> Iterator[str]:
    yield SYSTEM
    yield TASK
    yield from _taxonomy_text()
    yield from _personas()
    yield from _answers()
    yield from _catalogue_text(catalogue_step)
