"""Training samples from browsing sessions: one decision per viewed video.

Sessions are split whole and in time order (PersonaAct: the first 80% for training, the next
10% for validation, the last 10% for testing), so no test decision's session, nor anything
after it, is seen in training. A sample's history is the K videos before it in the same
session, since a session starts with nothing watched. The label is the person's own action in
the answer grammar; the -Persona ablation is the same sample without the profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bubblescope.agent.prompt import Prompt, answer_message, decision_prompt
from bubblescope.agent.spec import PromptSpec
from bubblescope.contracts import Action, Observation
from bubblescope.personas.schema import Persona, Session, TraceRecord

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
SPLIT_BOUNDS = (0.8, 0.9)  # cumulative share of records where validation, then test, begin

Observer = Callable[[TraceRecord], Observation | None]


@dataclass(frozen=True)
class Sample:
    persona: str
    session_id: str
    index: int  # the record's position in its session
    prompt: Prompt
    observation: Observation  # what the screen showed
    history: tuple[tuple[Observation, Action], ...]  # the videos before it in its session
    target: Action  # what the person did
    category: str | None  # the video's category, when labelled
    fallback_watch_s: float  # the persona's median watch: used when an answer has no watch()


def split_sessions(sessions: Sequence[Session]) -> dict[Split, list[Session]]:
    """Whole sessions in time order; a session goes where its middle record falls."""
    ordered = sorted(sessions, key=lambda s: s.start_time)
    total = sum(len(s.records) for s in ordered)
    splits: dict[Split, list[Session]] = {name: [] for name in SPLITS}
    seen = 0
    for session in ordered:
        middle = (seen + len(session.records) / 2) / max(total, 1)
        name = SPLITS[sum(middle >= bound for bound in SPLIT_BOUNDS)]
        splits[name].append(session)
        seen += len(session.records)
    _no_empty_split(splits)
    return splits


def _no_empty_split(splits: dict[Split, list[Session]]) -> None:
    """With few sessions a split can come out empty: borrow the nearest session in time from
    a neighbour that can spare one (train is never empty: its first session's middle falls
    in the first half)."""
    if not splits["test"] and len(splits["train"]) + len(splits["validation"]) > 1:
        donor = "validation" if splits["validation"] else "train"
        splits["test"].insert(0, splits[donor].pop())
    if not splits["validation"]:
        if len(splits["train"]) > 1:
            splits["validation"].insert(0, splits["train"].pop())
        elif len(splits["test"]) > 1:
            splits["validation"].append(splits["test"].pop(0))


def target_action(record: TraceRecord) -> Action:
    comment = next((a.text or "" for a in record.actions if a.type == "comment"), None)
    share = next((a.text or "" for a in record.actions if a.type == "share"), None)
    return Action(watch_s=round(record.viewing_duration, 1), like=record.did("like"),
                  comment=comment, share=share)


def session_samples(session: Session, persona: Persona, observe: Observer,
                    config: PromptSpec) -> list[Sample]:
    samples, history = [], []
    fallback = persona.stats.duration.median
    for index, record in enumerate(session.records):
        observation = observe(record)
        if observation is None:
            history.clear()  # a video we cannot show breaks the chain the prompt describes
            continue
        target = target_action(record)
        prompt = decision_prompt(persona, observation, history, config)
        samples.append(Sample(persona.id, session.session_id, index, prompt, observation,
                              tuple(history), target, record.category, fallback))
        history.append((observation, target))
        del history[:-max(config.history, 1)]
    return samples


def build_samples(sessions: Sequence[Session], persona: Persona,
                  observer_for: Callable[[Session], Observer],
                  config: PromptSpec | None = None) -> dict[Split, list[Sample]]:
    """Samples per split; the split is by session, in time order."""
    config = config or PromptSpec()
    return {name: [sample for session in group for sample in
                   session_samples(session, persona, observer_for(session), config)]
            for name, group in split_sessions(sessions).items()}


def without_persona(config: PromptSpec) -> PromptSpec:
    """The -Persona ablation's prompt: everything but the profile."""
    return config.model_copy(update={"persona": False})


def sft_row(sample: Sample) -> dict:
    """A conversational prompt-completion row, as TRL's trainers take it."""
    return {
        "prompt": sample.prompt.messages,
        "completion": [answer_message(sample.target, category=sample.category)],
        "images": sample.prompt.images,
        **target_columns(sample),
    }


def with_length(row: dict) -> dict:
    """The row with a `length` column (characters of prompt text), so batches can be drawn
    from rows of similar length (`train_sampling_strategy="group_by_length"`): on CPU,
    padding short rows to long ones doubles the cost of a mixed batch."""
    text = sum(len(part.get("text") or "") for message in row["prompt"]
               for part in message["content"])
    return {**row, "length": text}


def label_row(prompt: Prompt, category: str) -> dict:
    """A row teaching the video's category: the VLM classifier's prompt and its label."""
    return {"prompt": prompt.messages, "completion": [
        {"role": "assistant", "content": [{"type": "text", "text": category}]}],
        "images": prompt.images}


def target_columns(sample: Sample) -> dict:
    """The columns the GRPO rewards read (see trainer/rewards.py)."""
    target = sample.target
    return {"target_watch_s": target.watch_s, "target_like": target.like,
            "target_comment": target.comment is not None,
            "target_share": target.share is not None,
            "fallback_watch_s": sample.fallback_watch_s}
