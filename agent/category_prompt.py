"""The VLM category classifier's prompt and the strict reading of its answer.

The prompt constrains the answer to the taxonomy: it lists every main category with its
subcategories and asks for one `Main/Sub` label. A model that reads no instructions (the tiny
model, `instructions: false`) is asked with the video alone and answers with the label it was
pretrained to give (`trainer/pretrain.py`). The answer is searched for a taxonomy label
(English or Chinese, the longest that appears), so a model that adds words around the label
still classifies, and one that names nothing in the taxonomy gives None (unclassified, counted
in the step records) rather than a guess.
"""

from __future__ import annotations

import re
from functools import cache

from bubblescope.agent.prompt import Prompt, current_text, frame_image
from bubblescope.agent.spec import PromptSpec
from bubblescope.contracts import Observation
from bubblescope.taxonomy import load_taxonomy

SYSTEM = "You label short videos with a fixed taxonomy."


@cache
def taxonomy_listing() -> str:
    taxonomy = load_taxonomy()
    lines = []
    for main in taxonomy.mains:
        subs = [s.split("/", 1)[1] for s in taxonomy.subs if taxonomy.main_of(s) == main]
        lines.append(f"{main}: {', '.join(subs)}")
    return "\n".join(lines)


def category_prompt(observation: Observation, config: PromptSpec) -> Prompt:
    images = [frame_image(f, config.frame_edge) for f in observation.frames[-config.frames:]] \
        if config.frames else []
    task = ("Which category does the video on screen belong to? Answer with exactly one label "
            "'Main/Sub' from this taxonomy (main category: its subcategories):\n"
            + taxonomy_listing() + "\n\n") if config.instructions else ""
    content = [*([{"type": "text", "text": task}] if task else []),
               *({"type": "image"} for _ in images),
               {"type": "text", "text": current_text(observation, config) + "\nLabel:"}]
    return Prompt(messages=[{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                            {"role": "user", "content": content}], images=images)


@cache
def _label_pattern() -> re.Pattern:
    labels = sorted(load_taxonomy().aliases, key=len, reverse=True)  # longest first wins
    return re.compile("|".join(re.escape(label) for label in labels))


def parse_category(answer: str) -> str | None:
    """The canonical 'Main/Sub' (or 'Main') the answer names first, or None."""
    match = _label_pattern().search(answer[:2000])
    return load_taxonomy().resolve(match.group(0)) if match else None
