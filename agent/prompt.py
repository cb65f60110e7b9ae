"""The agent's prompt: who it plays, what it watched, what is on screen now.

The one place that turns a decision into chat messages, shared by the dataset builder, both
trainers, the in-process agent and the Serve deployment, so a model is always asked exactly
what it was trained on. The answer format lives beside it in `action_grammar.py`.

Messages follow the chat format of Qwen2.5-VL's processor: a list of role/content dicts whose
content mixes `{"type": "image"}` placeholders and text; the images travel separately, in
order.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from bubblescope.agent.action_grammar import ACTION_FUNCTIONS_DOC, format_action
from bubblescope.agent.spec import PromptSpec
from bubblescope.contracts import Action, Frame, Observation
from bubblescope.personas.schema import Persona

DEFAULT_PROMPT = PromptSpec()
SYSTEM = "You are a person scrolling a short-video feed on your phone."

TASK = (
    "Decide what you do with the video on screen, the way you yourself would. First say in one "
    "line what the video is about and its category, then answer with one Python code block "
    "calling these functions, one call per line:\n```python\n" + ACTION_FUNCTIONS_DOC + "\n```\n"
    "Always call watch() once; call the others only if you would do that."
)


@dataclass(frozen=True)
class Prompt:
    messages: list[dict]
    images: list[Image.Image] = field(default_factory=list)


def persona_profile(persona: Persona, categories: int = 8) -> str:
    """The persona in words: narrative, traits and the behaviour it is held to, down to how
    long it watches each of the `categories` main categories it sees most (PersonaAct's
    profiles carry the behaviour patterns mined from the person's trace)."""
    stats = persona.stats
    top = sorted(stats.categories.items(), key=lambda item: -item[1].share)[:categories]
    lines = [persona.narrative.strip()]
    lines += [f"- {name.replace('_', ' ')}: {value}" for name, value in persona.traits.items()]
    lines.append(
        f"Your habits: median watch {stats.duration.median:.1f} s, mean {stats.duration.mean:.1f} "
        f"s, {stats.duration.quick_skip_rate:.0%} of videos skipped within 3 s; you like "
        f"{stats.like_rate:.1%}, comment on {stats.comment_rate:.1%}, share {stats.share_rate:.1%}.")
    lines.append("What you watch most, and for how long:")
    lines += [f"- {name}: {category.share:.0%} of videos, median watch "
              f"{float(np.median(category.durations)):.1f} s, like {category.like_rate:.0%}"
              for name, category in top]
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headline(observation: Observation) -> str:
    lines = [line for line in observation.on_screen_text.splitlines() if line.strip()]
    return _clip(lines[0], 80) if lines else "(no text on screen)"


def _action_calls(action: Action) -> str:
    block = format_action(action)
    start = block.index("```python") + len("```python")
    return "; ".join(line for line in block[start:].split("```")[0].splitlines() if line)


def history_text(history: Sequence[tuple[Observation, Action]], limit: int) -> str:
    items = list(history)[-limit:] if limit > 0 else []
    if not items:
        return ""
    lines = [f"{i}. {_headline(obs)} -> {_action_calls(action)}"
             for i, (obs, action) in enumerate(items, 1)]
    return "Videos you just watched, oldest first, and what you did:\n" + "\n".join(lines)


def frame_image(frame: Frame, edge: int) -> Image.Image:
    if frame.format == "rgb24":
        image = Image.frombytes("RGB", (frame.width, frame.height), frame.data)
    else:
        image = Image.open(io.BytesIO(frame.data)).convert("RGB")
    image.thumbnail((edge, edge))
    return image


def current_text(observation: Observation, config: PromptSpec) -> str:
    parts = ["The video on screen now."]
    if observation.video_duration_s:
        parts.append(f"Length: {observation.video_duration_s:.0f} s.")
    parts.append("On screen: " + (_clip(observation.on_screen_text, config.screen_chars)
                                  or "(nothing readable)"))
    if observation.transcript.strip() and config.transcript_chars:
        parts.append("Audio transcript: " + _clip(observation.transcript, config.transcript_chars))
    return "\n".join(parts)


def decision_prompt(persona: Persona | None, observation: Observation,
                    history: Sequence[tuple[Observation, Action]],
                    config: PromptSpec = DEFAULT_PROMPT) -> Prompt:
    """The messages and images for one decision; `persona` is ignored when config.persona is
    False (and may then be None)."""
    images = [frame_image(frame, config.frame_edge)
              for frame in observation.frames[-config.frames:]] if config.frames else []
    sections = []
    if config.persona and persona is not None:
        sections.append("Who you are:\n" + persona_profile(persona))
    if config.instructions:
        sections.append(TASK)
    past = history_text(history, config.history)
    if past:
        sections.append(past)
    content = [{"type": "text", "text": "\n\n".join(sections) + "\n\n"}]
    content += [{"type": "image"} for _ in images]
    content.append({"type": "text", "text": current_text(observation, config)})
    # Content is always a list of parts, so rows of messages form one Arrow type.
    return Prompt(messages=[{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                            {"role": "user", "content": content}], images=images)


def answer_message(action: Action, *, category: str | None = None) -> dict:
    """The assistant turn a trained model should produce for `action` (the training label)."""
    return {"role": "assistant",
            "content": [{"type": "text", "text": format_action(action, category=category)}]}
