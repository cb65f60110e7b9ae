"""The simulated world: catalogue, recommender platforms, and their ground truth."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from bubblescope.sim.catalogue import Catalogue, CatalogueConfig, build_catalogue
from bubblescope.sim.platform import Feedback, Platform
from bubblescope.sim.profiles import inline_profile, named_profiles
from bubblescope.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return build_catalogue(CatalogueConfig(seed=1))


def test_taxonomy_is_papers_25_mains_with_chinese_aliases() -> None:
    taxonomy = load_taxonomy()
    assert len(taxonomy.mains) == 25
    assert len(taxonomy.subs) == 174
    assert taxonomy.resolve("美食") == "Food"
    assert taxonomy.resolve("美食/家常菜") == "Food/Home Cooking"


def test_catalogue_covers_the_taxonomy_with_long_tails(catalogue: Catalogue) -> None:
    assert catalogue.n_videos >= 10_000
    assert all(len(v) >= 60 for v in catalogue.sub_videos)
    durations = catalogue.video_duration
    assert np.mean(durations) > 1.3 * np.median(durations)  # right-skewed
    assert np.quantile(durations, 0.99) > 5 * np.median(durations)
    creators = Counter(catalogue.video_creator.tolist())
    top = sum(c for _, c in creators.most_common(len(creators) // 100))
    assert top / catalogue.n_videos > 0.05  # the top 1% of creators are popular (Zipf)


def test_catalogue_is_deterministic_and_text_follows_category(catalogue: Catalogue) -> None:
    again = Catalogue(CatalogueConfig(seed=1))
    assert np.array_equal(again.video_sub, catalogue.video_sub)
    assert again.text(123) == catalogue.text(123)
    other = Catalogue(CatalogueConfig(seed=2))
    assert not np.array_equal(other.video_sub, catalogue.video_sub)
    food = [v for v in range(2000) if catalogue.category(v).startswith("Food/")][:20]
    pets = [v for v in range(2000) if catalogue.category(v).startswith("Pets/")][:20]
    food_text = " ".join(catalogue.text(v).transcript for v in food)
    pets_text = " ".join(catalogue.text(v).transcript for v in pets)
    assert food_text.count("recipe") + food_text.count("cooking") > pets_text.count("recipe")
    assert pets_text.count("cat") + pets_text.count("dog") > food_text.count("dog")


def test_named_profiles_order_and_controls() -> None:
    profiles = named_profiles()
    assert {"bilibili-like", "douyin-like", "kuaishou-like", "null", "frozen"} <= set(profiles)
    assert profiles["null"].personalization == 0
    assert profiles["frozen"].adapt_phases == 1
    order = sorted(["bilibili-like", "kuaishou-like", "douyin-like"],
                   key=lambda n: profiles[n].responsiveness)
    assert order == ["bilibili-like", "kuaishou-like", "douyin-like"]


def _browse(platform: Platform, state, steps: int, likes: set[str]) -> list[str]:
    shown = []
    for _ in range(steps):
        video = platform.recommend(state)
        category = platform.catalogue.category(video)
        main = category.split("/")[0]
        liked = main in likes
        watch = platform.catalogue.video_duration[video] if liked else 1.0
        platform.feedback(state, Feedback(video, float(watch), like=liked))
        shown.append(main)
    return shown


def test_adaptive_platform_learns_and_null_does_not(catalogue: Catalogue) -> None:
    favourite = {"Pets"}
    for name, should_learn in [("douyin-like", True), ("null", False)]:
        platform = Platform(named_profiles()[name], catalogue)
        state = platform.new_account("a", seed=5)
        platform.begin_phase(state)
        shown = _browse(platform, state, 300, favourite)
        late_share = shown[-100:].count("Pets") / 100
        assert (late_share > 0.5) == should_learn, (name, late_share)


def test_frozen_platform_stops_after_its_first_phase(catalogue: Catalogue) -> None:
    platform = Platform(named_profiles()["frozen"], catalogue)
    state = platform.new_account("a", seed=5)
    platform.begin_phase(state)
    _browse(platform, state, 200, {"Pets"})
    learned = state.interest_main.copy()
    platform.begin_phase(state)
    _browse(platform, state, 100, {"Food"})
    assert np.array_equal(learned, state.interest_main)


def test_same_seed_same_feed_and_snapshot_restore_branch(catalogue: Catalogue) -> None:
    platform = Platform(named_profiles()["kuaishou-like"], catalogue)
    one, two = platform.new_account("a", 9), platform.new_account("a", 9)
    assert _browse(platform, one, 50, {"Food"}) == _browse(platform, two, 50, {"Food"})
    snapshot = json.loads(json.dumps(platform.snapshot(one)))  # survives JSON
    ahead = _browse(platform, one, 40, {"Food"})
    restored = platform.restore(snapshot)
    assert _browse(platform, restored, 40, {"Food"}) == ahead
    branch = platform.branch(platform.restore(snapshot), "b", seed=123)
    assert branch.account == "b"
    assert branch.seen == set(snapshot["seen"])
    assert np.array_equal(branch.interest_sub, np.array(snapshot["interest_sub"]))
    assert _browse(platform, branch, 40, {"Food"}) != ahead  # its own random stream


def test_inline_profile_needs_a_name_and_unique_name() -> None:
    from bubblescope.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a `name`"):
        inline_profile({"responsiveness": 0.2}, "job.yaml")
    with pytest.raises(ConfigError, match="named profile"):
        inline_profile({"name": "douyin-like"}, "job.yaml")
