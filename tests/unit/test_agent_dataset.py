"""Training samples: time-ordered session split, per-session history, labels, ablations."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bubblescope.agent.action_grammar import parse_action
from bubblescope.agent.prompt import decision_prompt, persona_profile
from bubblescope.agent.spec import PromptSpec
from bubblescope.personas.loader import load_persona
from bubblescope.personas.schema import Session, TraceRecord
from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue
from bubblescope.sim.observations import TraceFrames, TraceObserver
from bubblescope.sim.recruit import record_trace
from bubblescope.trainer.dataset import (
    SPLITS,
    build_samples,
    sft_row,
    split_sessions,
    without_persona,
)
from tests.conftest import EXAMPLES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(i: int, records: int) -> Session:
    rows = tuple(TraceRecord(timestamp=T0 + timedelta(days=i, seconds=j + 1),
                             viewing_duration=1.0) for j in range(records))
    return Session(session_id=f"s{i:03d}", collector="p", platform="x",
                   start_time=T0 + timedelta(days=i), records=rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=30), st.randoms())
@example([13, 1, 1], random.Random(0))  # one long session first: validation came out empty
def test_split_is_whole_sessions_in_time_order(sizes, rnd):
    sessions = [_session(i, n) for i, n in enumerate(sizes)]
    rnd.shuffle(sessions)
    splits = split_sessions(sessions)
    ordered = [s.session_id for name in SPLITS for s in splits[name]]
    assert ordered == sorted(s.session_id for s in sessions)  # each once, in time order
    if len(sessions) >= 3:
        assert all(splits[name] for name in SPLITS)
    if len(sessions) >= 20 and max(sizes) <= 3 * min(sizes):
        total = sum(sizes)
        train = sum(len(s.records) for s in splits["train"])
        assert 0.65 * total <= train <= 0.9 * total


@pytest.fixture(scope="module")
def samples():
    persona = load_persona(EXAMPLES / "personas" / "concentrated.yaml")
    sessions = record_trace("concentrated", seed=0, records=300)
    observer = TraceObserver(build_catalogue(CatalogueConfig(seed=0)), TraceFrames(count=2))
    config = PromptSpec(history=3, frames=2, frame_edge=64)
    return persona, sessions, observer, build_samples(sessions, persona,
                                                      lambda _s: observer.observe, config)


def test_history_stays_inside_its_session(samples):
    _, _, _, splits = samples
    for sample in splits["train"]:
        text = sample.prompt.messages[1]["content"][0]["text"]
        listed = text.count("\n1. ") + sum(text.count(f"\n{i}. ") for i in (2, 3))
        assert listed == min(sample.index, 3)


def test_label_is_the_persons_action_and_parses_back(samples):
    _, sessions, _, splits = samples
    records = {(s.session_id, i): r for s in sessions for i, r in enumerate(s.records)}
    for sample in splits["train"][:80]:
        record = records[(sample.session_id, sample.index)]
        row = sft_row(sample)
        answer = row["completion"][0]["content"][0]["text"]
        parsed = parse_action(answer, fallback_watch_s=99.0)
        assert parsed.format_ok
        assert parsed.action.watch_s == pytest.approx(record.viewing_duration, abs=0.051)
        assert parsed.action.like == record.did("like")
        assert row["target_like"] == record.did("like")
        assert sample.category and sample.category in answer


def test_frames_are_images_in_the_prompt(samples):
    _, _, _, splits = samples
    sample = splits["test"][0]
    parts = sample.prompt.messages[1]["content"]
    assert sum(part["type"] == "image" for part in parts) == len(sample.prompt.images) == 2
    assert max(sample.prompt.images[0].size) <= 64


def test_persona_ablation_drops_only_the_profile(samples):
    persona, sessions, observer, _ = samples
    record = sessions[0].records[0]
    observation = observer.observe(record)
    full = decision_prompt(persona, observation, [], PromptSpec())
    ablated = decision_prompt(persona, observation, [], without_persona(PromptSpec()))
    full_text = full.messages[1]["content"][0]["text"]
    ablated_text = ablated.messages[1]["content"][0]["text"]
    assert persona.narrative.split()[0] in full_text and "Who you are" in full_text
    assert "Who you are" not in ablated_text and full_text.endswith(ablated_text)


def test_profile_says_how_long_each_main_category_is_watched(samples):
    import numpy as np

    persona = samples[0]
    profile = persona_profile(persona)
    food = persona.stats.categories["Food"]
    assert (f"- Food: {food.share:.0%} of videos, median watch "
            f"{float(np.median(food.durations)):.1f} s") in profile
    assert profile.count(" of videos, median watch ") == min(8, len(persona.stats.categories))


def test_labelled_rows_teach_the_category_with_the_classifiers_prompt():
    from bubblescope.agent.category_prompt import parse_category
    from bubblescope.trainer.config import TrainConfig
    from bubblescope.trainer.pretrain import CrowdSpec, labelled_rows

    config = TrainConfig(base_model="unused", prompt={"instructions": False, "frames": 1,
                                                      "frame_edge": 56})
    rows = labelled_rows(CrowdSpec(labelled=12), config)
    catalogue = build_catalogue(CatalogueConfig(seed=0))
    assert len(rows) == 12 and len(rows) == len({r["prompt"][1]["content"][-1]["text"]
                                                 for r in rows})  # no video twice
    for row in rows:
        label = row["completion"][0]["content"][0]["text"]
        assert parse_category(label) == label and label in catalogue.taxonomy.subs
        text = row["prompt"][1]["content"][-1]["text"]
        assert text.endswith("Label:") and "taxonomy" not in text  # no listing for the tiny
        assert len(row["images"]) == 1


def test_unknown_videos_are_skipped_not_invented():
    observer = TraceObserver(build_catalogue(CatalogueConfig(seed=0)), TraceFrames(count=0))
    foreign = TraceRecord(timestamp=T0, viewing_duration=2.0, video_id="v1-000003")
    assert observer.observe(foreign) is None
    assert observer.observe(TraceRecord(timestamp=T0, viewing_duration=2.0)) is None


def test_pooled_ablation_trains_on_one_personas_budget_from_every_persona():
    from bubblescope.trainer.config import TrainConfig
    from bubblescope.trainer.sft import pooled_samples, training_samples

    config = TrainConfig(base_model="unused", data={"records": 120},
                         prompt={"instructions": False, "frames": 1, "frame_edge": 56})
    personas = [load_persona(EXAMPLES / "personas" / f"{name}.yaml")
                for name in ("concentrated", "dispersed")]
    own = {p.id: training_samples(config, p) for p in personas}
    pooled = pooled_samples(config, personas)
    sizes = [len(splits["train"]) for splits in own.values()]
    assert abs(len(pooled["train"]) - sum(sizes) / 2) <= 1
    for persona in personas:
        mine = [s for s in pooled["train"] if s.persona == persona.id]
        assert {s.session_id for s in mine} == {s.session_id for s in own[persona.id]["train"]}
    assert len(pooled["test"]) == sum(len(splits["test"]) for splits in own.values())
