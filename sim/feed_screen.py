"""The simulated app's feed screen for one video, modelled once.

The in-process device reads it as the text a screen reader would give; the virtual phone lays
it out as views (`sim/android/layout.py`), which its UI dump, renderer and touch dispatch share.
Both therefore show the same title, author, caption and counters for the same video.
"""

from __future__ import annotations

from dataclasses import dataclass

from bubblescope.contracts import VideoTruth
from bubblescope.sim.catalogue import Catalogue


@dataclass(frozen=True)
class FeedScreen:
    """What the feed shows over one video, and which sheet (if any) is open over it."""

    title: str
    author: str
    caption: str
    liked: bool
    like_count: int
    comment_count: int
    share_count: int
    sheet: str | None = None  # "comment", "share" or None
    draft: str = ""

    def text(self) -> str:
        """The screen as lines of text: title, @author, caption, then the three counters."""
        return (f"{self.title}\n@{self.author}\n{self.caption}\n"
                f"{self.like_count} likes  {self.comment_count} comments  "
                f"{self.share_count} shares")


def feed_screen(catalogue: Catalogue, video: int, *, liked: bool = False, comments: int = 0,
                shared: bool = False, sheet: str | None = None, draft: str = "") -> FeedScreen:
    """The feed over `video`; the counters include this user's own like, comments and share."""
    text = catalogue.text(video)
    likes = int(catalogue.video_weight[video] * 20_000) + 3
    return FeedScreen(text.title, text.creator, text.caption, liked, likes + liked,
                      likes // 9 + comments, likes // 30 + shared, sheet, draft)


def video_truth(catalogue: Catalogue, video: int) -> VideoTruth:
    """What the video really is: the ground truth a simulated device reports beside it."""
    return VideoTruth(video_id=catalogue.video_id(video), category=catalogue.category(video),
                      duration_s=float(catalogue.video_duration[video]))
