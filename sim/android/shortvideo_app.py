"""The simulated short-video app: a full-screen feed over one account of a simulated platform.

The app only sees gestures, keys and typed text, as a real one does, and turns them into what
the platform learns from: the device time a video stayed on screen (measured from when it
appeared to the swipe that left it, paused while the app is in the background) and whether it
was liked, commented or shared. Swiping up sends that feedback and shows the next
recommendation. Swiping down does nothing: there is no going back to a previous video, so
each video is judged exactly once. A tap on the video itself does nothing either (no pause).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bubblescope.contracts import VideoTruth
from bubblescope.sim.android.account_store import AccountStore
from bubblescope.sim.android.layout import SHARE_TARGETS, Geometry, View, feed_tree, hit_test
from bubblescope.sim.android.touch import Swipe
from bubblescope.sim.catalogue import Catalogue
from bubblescope.sim.feed_screen import FeedScreen, feed_screen, video_truth
from bubblescope.sim.platform import AccountState, Feedback

log = logging.getLogger(__name__)

KEYCODE_BACK, KEYCODE_ENTER, KEYCODE_DEL = 4, 66, 67
SWIPE_FRACTION = 0.2  # an upward swipe longer than this share of the height goes to the next
SHARE_LINK = "https://bubblescope.example/v/{video_id}"


@dataclass
class _Viewing:
    """The video on screen and what the user did with it so far."""

    video: int
    played_s: float = 0.0  # device seconds played before the last resume
    resumed_at: float | None = None
    liked: bool = False
    comments: list[str] = field(default_factory=list)
    shared_to: str | None = None

    def position(self, now: float) -> float:
        return self.played_s + (now - self.resumed_at if self.resumed_at is not None else 0.0)

    def pause(self, now: float) -> None:
        self.played_s, self.resumed_at = self.position(now), None

    def resume(self, now: float) -> None:
        if self.resumed_at is None:
            self.resumed_at = now


@dataclass(frozen=True)
class AppSnapshot:
    """A read-only view of the app's state, for tests and harnesses."""

    running: bool
    resumed: bool
    video: int | None = None
    video_id: str | None = None
    position_s: float = 0.0
    liked: bool = False
    comments: tuple[str, ...] = ()
    shared_to: str | None = None
    sheet: str | None = None
    draft: str = ""
    like_count: int = 0
    comment_count: int = 0
    share_count: int = 0
    feedback: tuple[Feedback, ...] = ()  # what this app process sent to the platform


class ShortVideoApp:
    def __init__(self, catalogue: Catalogue, store: AccountStore, account: str, seed: int,
                 geometry: Geometry, clock: Callable[[], float],
                 set_clipboard: Callable[[str], None]) -> None:
        self.catalogue, self.store, self.account, self.seed = catalogue, store, account, seed
        self.geometry, self._clock, self._set_clipboard = geometry, clock, set_clipboard
        self.running = self.resumed = False
        self._state: AccountState | None = None
        self._viewing: _Viewing | None = None
        self._sheet: str | None = None
        self._draft = ""
        self._feedback: list[Feedback] = []

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Cold start (log in, show the next recommendation) or bring back to the front."""
        if not self.running:
            self._state = self.store.login(self.account, self.seed)
            self.running = True
            self._show_next()
            log.debug("app started for %s on %s", self.account, self.store.platform_name)
        self.resumed = True
        if self._viewing is not None:
            self._viewing.resume(self._clock())

    def background(self) -> None:
        if self.resumed and self._viewing is not None:
            self._viewing.pause(self._clock())
        self.resumed = False

    def force_stop(self) -> None:
        """The process dies: what is on screen is forgotten, the server keeps the account."""
        self.background()
        self.running = False
        self._state = self._viewing = self._sheet = None
        self._draft = ""
        self._feedback = []

    # input -----------------------------------------------------------------------------
    def tap(self, x: float, y: float) -> None:
        tree = self.tree()
        if self._sheet is not None:
            panel = tree.find(f"{self._sheet}_sheet")
            if panel is not None and not panel.contains(x, y):  # a tap outside closes it
                self.close_sheet()
                return
        hit = hit_test(tree, x, y)
        if hit is None or not hit.enabled:
            return
        handler = self._tap_handlers().get(hit.name)
        if handler is not None:
            handler()
        elif hit.name.startswith("share_target_"):
            self._share(hit.text)

    def _tap_handlers(self) -> dict[str, Callable[[], None]]:
        return {"like_button": self._toggle_like, "comment_button": lambda: self._open("comment"),
                "share_button": lambda: self._open("share"), "comment_close": self.close_sheet,
                "comment_send": self._send_comment, "share_cancel": self.close_sheet}

    def swipe(self, gesture: Swipe) -> None:
        dx, dy = gesture.x2 - gesture.x1, gesture.y2 - gesture.y1
        if self._sheet or self._viewing is None:
            return
        if dy < -SWIPE_FRACTION * self.geometry.height and abs(dy) > abs(dx):
            self._next_video()

    def key(self, keycode: int) -> bool:
        """Handle a key; False when the app leaves it to the system (BACK on the feed)."""
        if keycode == KEYCODE_BACK:
            if self._sheet is None:
                return False
            self.close_sheet()
        elif keycode == KEYCODE_ENTER and self._sheet == "comment":
            self._send_comment()
        elif keycode == KEYCODE_DEL and self._sheet == "comment":
            self._draft = self._draft[:-1]
        return True

    def type_text(self, text: str) -> None:
        """Text goes to the focused EditText; only the comment sheet has one."""
        if self._sheet == "comment":
            self._draft += text

    def close_sheet(self) -> None:
        self._sheet, self._draft = None, ""

    # feed ------------------------------------------------------------------------------
    def _open(self, sheet: str) -> None:
        self._sheet, self._draft = sheet, ""

    def _toggle_like(self) -> None:
        if self._viewing is not None:
            self._viewing.liked = not self._viewing.liked

    def _send_comment(self) -> None:
        if self._viewing is not None and self._draft.strip():
            self._viewing.comments.append(self._draft)
            self.close_sheet()

    def _share(self, target: str) -> None:
        if self._viewing is None or target not in SHARE_TARGETS:
            return
        self._viewing.shared_to = target
        if target == "Copy link":
            video_id = self.catalogue.video_id(self._viewing.video)
            self._set_clipboard(SHARE_LINK.format(video_id=video_id))
        self.close_sheet()

    def _show_next(self) -> None:
        assert self._state is not None
        video = self.store.platform.recommend(self._state)
        self.store.save(self._state)
        self._viewing = _Viewing(video)
        if self.resumed:
            self._viewing.resume(self._clock())

    def _next_video(self) -> None:
        viewing, state = self._viewing, self._state
        assert viewing is not None and state is not None
        feedback = Feedback(viewing.video, viewing.position(self._clock()), viewing.liked,
                            bool(viewing.comments), viewing.shared_to is not None)
        self.store.platform.feedback(state, feedback)
        self._feedback.append(feedback)
        log.debug("feedback %s", feedback)
        self._show_next()

    # what is shown ---------------------------------------------------------------------
    def _screen(self, viewing: _Viewing) -> FeedScreen:
        return feed_screen(self.catalogue, viewing.video, liked=viewing.liked,
                           comments=len(viewing.comments), shared=viewing.shared_to is not None,
                           sheet=self._sheet, draft=self._draft)

    def tree(self) -> View:
        if self._viewing is None:
            raise RuntimeError("the app shows nothing until it has started")
        return feed_tree(self.geometry, self._screen(self._viewing))

    @property
    def sheet(self) -> str | None:
        return self._sheet

    def media(self, now: float | None = None) -> tuple[int | None, float]:
        """The video playing and its position at device time `now` (seconds it has played
        since it appeared, unlooped), or (None, 0) when the app is not in front."""
        if self._viewing is None or not self.resumed:
            return None, 0.0
        return self._viewing.video, self._viewing.position(self._clock() if now is None else now)

    def truth(self) -> VideoTruth | None:
        if self._viewing is None:
            return None
        return video_truth(self.catalogue, self._viewing.video)

    def snapshot(self) -> AppSnapshot:
        viewing = self._viewing
        if viewing is None:
            return AppSnapshot(self.running, self.resumed, feedback=tuple(self._feedback))
        screen = self._screen(viewing)
        return AppSnapshot(
            self.running, self.resumed, viewing.video, self.catalogue.video_id(viewing.video),
            viewing.position(self._clock()), viewing.liked, tuple(viewing.comments),
            viewing.shared_to, self._sheet, self._draft, screen.like_count,
            screen.comment_count, screen.share_count, tuple(self._feedback))
