"""An online-learning recommender, one per simulated platform, holding one state per account.

The platform learns each account's interest in every main and subcategory from watch ratio
and engagement, and samples the next video's subcategory from global popularity sharpened by
those interests. Everything random flows from the account's own generator, so a run is
deterministic under its seed, and an account's state can be snapshotted, restored and branched.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from bubblescope.sim.catalogue import Catalogue
from bubblescope.sim.profiles import PlatformProfile


@dataclass
class AccountState:
    account: str
    interest_main: np.ndarray  # learned interest per main category, centred on 0
    interest_sub: np.ndarray  # learned interest per subcategory
    seen_main: np.ndarray  # feedback learned from, per main category
    seen_sub: np.ndarray  # feedback learned from, per subcategory
    rng: np.random.Generator
    seen: set[int] = field(default_factory=set)
    baseline: float = 0.0  # running mean engagement, the zero point of interest
    phases_begun: int = 0
    feedback_count: int = 0  # feedback the platform has learned from


@dataclass(frozen=True)
class Feedback:
    video: int
    watch_s: float
    like: bool = False
    comment: bool = False
    share: bool = False


class Platform:
    def __init__(self, profile: PlatformProfile, catalogue: Catalogue) -> None:
        self.profile = profile
        self.catalogue = catalogue
        self._sub_main = np.array(catalogue.taxonomy.sub_main)
        self._log_popularity = np.log(catalogue.sub_popularity)

    def new_account(self, account: str, seed: int) -> AccountState:
        return AccountState(
            account=account,
            interest_main=np.zeros(len(self.catalogue.taxonomy.mains)),
            interest_sub=np.zeros(self.catalogue.n_subs),
            seen_main=np.zeros(len(self.catalogue.taxonomy.mains)),
            seen_sub=np.zeros(self.catalogue.n_subs),
            rng=np.random.default_rng(seed),
        )

    def begin_phase(self, state: AccountState) -> None:
        state.phases_begun += 1

    def learning(self, state: AccountState) -> bool:
        limit = self.profile.adapt_phases
        return self.profile.responsiveness > 0 and (limit is None or state.phases_begun <= limit)

    def confidence(self, state: AccountState) -> float:
        """Cold start: how far the feed trusts what it has learned, from 0 towards 1."""
        return 1.0 - math.exp(-state.feedback_count / self.profile.cold_start_steps)

    def feed_distribution(self, state: AccountState) -> np.ndarray:
        """Probability of each subcategory being next."""
        profile = self.profile
        popular = self.catalogue.sub_popularity
        if profile.personalization == 0:
            return popular
        interest = state.interest_main[self._sub_main] + profile.sub_weight * state.interest_sub
        sharpness = profile.personalization * self.confidence(state)
        logits = self._log_popularity + sharpness * interest
        personal = np.exp(logits - logits.max())
        personal /= personal.sum()
        return (1 - profile.exploration) * personal + profile.exploration * popular

    def recommend(self, state: AccountState) -> int:
        p = self.feed_distribution(state)
        sub = int(np.searchsorted(np.cumsum(p), state.rng.random() * p.sum()))
        sub = min(sub, len(p) - 1)
        video = self.catalogue.pick_in_sub(sub, state.rng, state.seen)
        state.seen.add(video)
        return video

    def engagement(self, feedback: Feedback) -> float:
        """Signal in about [-1, 1.5]: time spent and share completed, plus any engagement."""
        profile = self.profile
        duration = float(self.catalogue.video_duration[feedback.video])
        watch = max(feedback.watch_s, 0.05)
        seconds = math.tanh(math.log(watch / profile.watch_pivot_s))
        completion = math.tanh(math.log(watch / (duration * profile.completion_pivot)))
        extra = profile.like_boost * feedback.like + 0.25 * (feedback.comment + feedback.share)
        return 0.5 * (seconds + completion) + extra

    def _rate(self, seen: float) -> float:
        """Learning rate of an interest after `seen` signals: exponential forgetting at
        `responsiveness`, or for the `average` learner a running mean that never forgets."""
        if self.profile.learner == "average":  # shrunk towards 0 by `prior_count` pseudo-signals
            return 1.0 / (seen + self.profile.prior_count)
        return self.profile.responsiveness

    def feedback(self, state: AccountState, feedback: Feedback) -> None:
        if not self.learning(state):
            return
        state.feedback_count += 1
        signal = self.engagement(feedback)
        state.baseline += self.profile.baseline_rate * (signal - state.baseline)
        centred = signal - state.baseline
        sub = int(self.catalogue.video_sub[feedback.video])
        main = int(self._sub_main[sub])
        state.seen_main[main] += 1
        state.seen_sub[sub] += 1
        state.interest_main[main] += self._rate(state.seen_main[main]) * (
            centred - state.interest_main[main])
        state.interest_sub[sub] += self._rate(state.seen_sub[sub]) * (
            centred - state.interest_sub[sub])

    def snapshot(self, state: AccountState) -> dict:
        """A JSON-safe copy of the account's whole state."""
        return {
            "account": state.account,
            "interest_main": state.interest_main.tolist(),
            "interest_sub": state.interest_sub.tolist(),
            "seen_main": state.seen_main.tolist(),
            "seen_sub": state.seen_sub.tolist(),
            "seen": sorted(state.seen),
            "rng": state.rng.bit_generator.state,
            "baseline": state.baseline,
            "phases_begun": state.phases_begun,
            "feedback_count": state.feedback_count,
        }

    def restore(self, snapshot: dict) -> AccountState:
        rng = np.random.default_rng()
        rng.bit_generator.state = copy.deepcopy(snapshot["rng"])
        seen = set(snapshot["seen"])
        return AccountState(
            account=snapshot["account"],
            interest_main=np.array(snapshot["interest_main"], dtype=float),
            interest_sub=np.array(snapshot["interest_sub"], dtype=float),
            seen_main=np.array(snapshot["seen_main"], dtype=float),
            seen_sub=np.array(snapshot["seen_sub"], dtype=float),
            rng=rng,
            seen=seen,
            baseline=float(snapshot["baseline"]),
            phases_begun=int(snapshot["phases_begun"]),
            feedback_count=int(snapshot["feedback_count"]),
        )

    def branch(self, state: AccountState, account: str, seed: int) -> AccountState:
        """A copy of the account that diverges from here with its own random stream."""
        twin = self.restore(self.snapshot(state))
        twin.account = account
        twin.rng = np.random.default_rng(seed)
        return twin
