"""Browsing traces of synthetic humans on simulated platforms: the data agents learn from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from bubblescope.personas.schema import Session, TraceAction, TraceRecord
from bubblescope.sim.catalogue import Catalogue
from bubblescope.sim.human import SyntheticHuman
from bubblescope.sim.platform import Feedback, Platform

SWIPE_S = 0.4  # device time a swipe to the next video takes
TRACE_EPOCH = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _actions(reaction) -> tuple[TraceAction, ...]:
    actions = []
    if reaction.like:
        actions.append(TraceAction(type="like"))
    if reaction.comment:
        actions.append(TraceAction(type="comment", text=reaction.comment))
    if reaction.share:
        actions.append(TraceAction(type="share", text=reaction.share))
    return tuple(actions)


def browse(human: SyntheticHuman, platform: Platform, *, records: int, seed: int,
           collector: str) -> list[Session]:
    """`human` scrolls one fresh account for `records` videos, in daily sessions."""
    rng = np.random.default_rng([seed, 0x7ACE])
    catalogue: Catalogue = platform.catalogue
    account = platform.new_account(f"{collector}-trace", seed)
    sessions: list[Session] = []
    day = 0
    while records > 0:
        length = min(records, max(3, int(rng.poisson(human.spec.session_length))))
        start = TRACE_EPOCH + timedelta(days=day, hours=float(rng.uniform(-4, 9)))
        clock = start
        rows = []
        for _ in range(length):
            video = platform.recommend(account)
            duration = float(catalogue.video_duration[video])
            reaction = human.react(catalogue.category(video), duration)
            clock += timedelta(seconds=reaction.watch_s + SWIPE_S)
            platform.feedback(account, Feedback(video, reaction.watch_s, reaction.like,
                                                reaction.comment is not None,
                                                reaction.share is not None))
            rows.append(TraceRecord(
                timestamp=clock, viewing_duration=reaction.watch_s, actions=_actions(reaction),
                video_id=catalogue.video_id(video), video_duration_s=duration,
                category=catalogue.category(video),
            ))
        sessions.append(Session(session_id=start.strftime("%Y%m%d_%H%M%S"), collector=collector,
                                platform=platform.profile.name, start_time=start,
                                records=tuple(rows)))
        records -= length
        day += 1
    return sessions
