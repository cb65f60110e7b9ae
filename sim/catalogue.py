"""The simulated content catalogue: videos over the taxonomy, creators, and their text.

Numbers are drawn once per seed and held as arrays; a video's text (title, caption,
transcript) is derived from its id on demand, so a catalogue of any size builds in
milliseconds and every process that builds it with the same seed sees the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import numpy as np
import yaml

from bubblescope.taxonomy import Taxonomy, load_taxonomy


@dataclass(frozen=True)
class CatalogueConfig:
    seed: int = 0  # the world's seed: same seed, same catalogue
    videos: int = 20_000  # catalogue size
    creators: int = 2_500  # creators, each rooted in one subcategory
    min_per_sub: int = 60  # floor of videos per subcategory
    main_zipf: float = 0.8  # skew of the main categories' global popularity
    creator_zipf: float = 1.1  # skew of creator popularity
    duration_median_s: float = 30.0  # typical video length
    duration_sigma: float = 0.9  # spread of log duration: long-tailed


@dataclass(frozen=True)
class VideoText:
    title: str
    caption: str
    transcript: str
    creator: str


@cache
def _vocabulary() -> dict:
    text = resources.files("bubblescope.sim").joinpath("data/vocabulary.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _category_words(taxonomy: Taxonomy) -> list[list[str]]:
    """Per subcategory: its main's words plus the words of its own label."""
    main_words = _vocabulary()["categories"]
    words = []
    for sub, main_index in zip(taxonomy.subs, taxonomy.sub_main, strict=True):
        label = sub.split("/", 1)[1].lower().replace("&", " ").split()
        words.append(main_words[taxonomy.mains[main_index]] + [w for w in label if len(w) > 2])
    return words


class Catalogue:
    """Arrays indexed by video number: subcategory, duration, creator, popularity."""

    def __init__(self, config: CatalogueConfig, taxonomy: Taxonomy | None = None) -> None:
        self.config = config
        self.taxonomy = taxonomy or load_taxonomy()
        rng = np.random.default_rng([config.seed, 0xCA7])
        self.sub_popularity = self._sub_popularity(rng)
        self.video_sub = self._assign_subs(rng)
        self.creator_sub, creator_weight = self._creators(rng)
        self.video_creator = self._assign_creators(rng, creator_weight)
        self.video_duration = self._durations(rng)
        self.video_weight = creator_weight[self.video_creator] * rng.lognormal(0, 1, config.videos)
        self.sub_videos = [np.flatnonzero(self.video_sub == s) for s in range(self.n_subs)]
        self._sub_cumweight = [np.cumsum(self.video_weight[v]) for v in self.sub_videos]
        self._words = _category_words(self.taxonomy)
        self._filler = _vocabulary()["filler"]

    @property
    def n_subs(self) -> int:
        return len(self.taxonomy.subs)

    @property
    def n_videos(self) -> int:
        return self.config.videos

    def _sub_popularity(self, rng: np.random.Generator) -> np.ndarray:
        n_main = len(self.taxonomy.mains)
        main_rank = rng.permutation(n_main) + 1
        main_share = main_rank ** -self.config.main_zipf
        sub_main = np.array(self.taxonomy.sub_main)
        within = rng.dirichlet(np.full(len(sub_main), 4.0))
        share = main_share[sub_main] * within
        for m in range(n_main):  # each main's subs split that main's share
            members = sub_main == m
            share[members] = main_share[m] * within[members] / within[members].sum()
        return share / share.sum()

    def _assign_subs(self, rng: np.random.Generator) -> np.ndarray:
        floor = self.config.min_per_sub * self.n_subs
        if self.config.videos < floor:
            raise ValueError(f"catalogue needs at least {floor} videos for {self.n_subs} subs")
        extra = rng.multinomial(self.config.videos - floor, self.sub_popularity)
        counts = extra + self.config.min_per_sub
        return rng.permutation(np.repeat(np.arange(self.n_subs), counts))

    def _creators(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n = max(self.config.creators, self.n_subs)
        creator_sub = np.concatenate([np.arange(self.n_subs),
                                      rng.choice(self.n_subs, n - self.n_subs, p=self.sub_popularity)])
        weight = rng.permutation(np.arange(1, n + 1) ** -self.config.creator_zipf)
        return creator_sub, weight

    def _assign_creators(self, rng: np.random.Generator, weight: np.ndarray) -> np.ndarray:
        video_creator = np.empty(self.config.videos, dtype=np.int64)
        for s in range(self.n_subs):
            videos = np.flatnonzero(self.video_sub == s)
            creators = np.flatnonzero(self.creator_sub == s)
            p = weight[creators] / weight[creators].sum()
            video_creator[videos] = rng.choice(creators, len(videos), p=p)
        return video_creator

    def _durations(self, rng: np.random.Generator) -> np.ndarray:
        main_scale = rng.lognormal(0, 0.35, len(self.taxonomy.mains))
        scale = main_scale[np.array(self.taxonomy.sub_main)][self.video_sub]
        raw = rng.lognormal(np.log(self.config.duration_median_s), self.config.duration_sigma,
                            self.config.videos) * scale
        return np.clip(np.round(raw, 1), 3.0, 1800.0)

    def pick_in_sub(self, sub: int, rng: np.random.Generator, seen: set[int]) -> int:
        """A popularity-weighted video of `sub`, one not in `seen` while the sub has any left.

        A subcategory that runs dry repeats its videos rather than vanishing from the feed,
        so what a feed shows depends on the recommender, not on the catalogue's size.
        """
        videos, cumweight = self.sub_videos[sub], self._sub_cumweight[sub]
        video = -1
        for _ in range(16):
            video = int(videos[np.searchsorted(cumweight, rng.random() * cumweight[-1])])
            if video not in seen:
                return video
        unseen = [int(v) for v in videos if int(v) not in seen]
        return unseen[int(rng.integers(len(unseen)))] if unseen else video

    def category(self, video: int) -> str:
        return self.taxonomy.subs[self.video_sub[video]]

    def video_id(self, video: int) -> str:
        return f"v{self.config.seed:x}-{video:06d}"

    def video_index(self, video_id: str) -> int | None:
        """The video number behind `video_id`, or None when it is not from this catalogue."""
        prefix, _, number = video_id.partition("-")
        if prefix != f"v{self.config.seed:x}" or not number.isdigit():
            return None
        video = int(number)
        return video if video < self.n_videos else None

    def text(self, video: int) -> VideoText:
        rng = random.Random(self.config.seed * 1_000_003 + video)
        words = self._words[self.video_sub[video]]

        def phrase(n_topic: int, n_filler: int) -> str:
            parts = rng.choices(words, k=n_topic) + rng.choices(self._filler, k=n_filler)
            rng.shuffle(parts)
            return " ".join(parts)

        creator = int(self.video_creator[video])
        return VideoText(
            title=phrase(3, 2).capitalize(),
            caption=" ".join(f"#{w}" for w in rng.sample(words, 3)),
            transcript=". ".join(phrase(4, 6) for _ in range(3)) + ".",
            creator=f"{rng.choice(words)}_{creator:04d}",
        )


@lru_cache(maxsize=4)
def build_catalogue(config: CatalogueConfig) -> Catalogue:
    """One shared catalogue per process and config (they are read-only)."""
    return Catalogue(config)
