"""What a recorded person did with each video, read from their taps and the UI around them.

A tap means something only through what was on screen at that moment. UI dumps are taken
continuously and stamped in device time; a tap is judged against the last dump that was
complete before it (`UiTimeline.before`), found in the tree the way the app driver finds the
views it taps itself (`devices/data/apps.yaml`):

* like: a tap on the like button toggles it; a video counts as liked when the taps toggled
  it on, or when the button's checked/selected state went from off (first dump of the view)
  to on (last dump before the swipe that left it), which catches a double tap on the video;
* comment: a tap on `comment_send` (apps send only a non-empty draft, so a tap there is a
  comment). The text is the comment input's text in the newest dump before the tap in which
  the send button was enabled (an empty input shows its hint, with send disabled). Text
  typed and sent within one dump interval is missed: the comment counts, with no text;
* share: a tap on a share target: a clickable labelled node in the same row as the driver's
  `share_target` (so any target, not only the one the driver would pick); its label is kept.

Heuristics and their limits are the app driver's: a view matched only by a fallback position
(`at`) is hit within HIT_RADIUS of it, whatever covers it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bubblescope.contracts import VideoTruth
from bubblescope.devices.app_drivers import AppDriver
from bubblescope.devices.ui_tree import Node
from bubblescope.personas.schema import TraceAction
from bubblescope.recorder.gestures import Gesture

HIT_RADIUS = 0.05  # share of the screen width around a fallback position
BEFORE_MARGIN_S = 0.05  # device seconds a dump must have ended before a tap to be "before" it
SIGNATURE_ROLES = ("title", "author", "caption")


@dataclass(frozen=True)
class UiSnapshot:
    before: float  # device monotonic seconds when the dump was asked for
    after: float  # ... and when it had arrived
    xml: str
    nodes: tuple[Node, ...]


class UiTimeline:
    """The dumps of the last while, in time order, shared by the dumping thread and the
    recorder (a condition wakes a recorder waiting for the screen to change)."""

    def __init__(self, keep: int = 256) -> None:
        self._snapshots: deque[UiSnapshot] = deque(maxlen=keep)
        self._changed = threading.Condition()

    def add(self, snapshot: UiSnapshot) -> None:
        with self._changed:
            self._snapshots.append(snapshot)
            self._changed.notify_all()

    def before(self, t: float, since: float = float("-inf")) -> list[UiSnapshot]:
        """Dumps complete before t (and begun at or after `since`), newest first."""
        with self._changed:
            return [s for s in reversed(self._snapshots)
                    if s.after + BEFORE_MARGIN_S <= t and s.before >= since]

    def wait_for(self, accept: Callable[[UiSnapshot], bool],
                 timeout_s: float) -> UiSnapshot | None:
        """The first dump `accept`s, waiting up to timeout_s real seconds for it."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = next((s for s in self._snapshots if accept(s)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    def latest(self) -> UiSnapshot | None:
        with self._changed:
            return self._snapshots[-1] if self._snapshots else None


@dataclass
class ViewState:
    """The video on screen and what was done with it so far."""

    index: int  # 1-based, in viewing order
    started: float  # device monotonic seconds
    snapshot: UiSnapshot  # the first dump showing it
    signature: tuple[str, ...]
    truth: VideoTruth | None = None
    like_taps: list[float] = field(default_factory=list)
    actions: list[tuple[float, TraceAction]] = field(default_factory=list)


class ActionReader:
    def __init__(self, driver: AppDriver, screen: tuple[int, int]) -> None:
        self.driver, self.screen = driver, screen

    def signature(self, nodes: tuple[Node, ...]) -> tuple[str, ...]:
        """What tells one video from the next (title, author, caption); empty when the
        driver finds none of them."""
        texts = tuple(self.driver.text_of(role, list(nodes)) for role in SIGNATURE_ROLES)
        return texts if any(texts) else ()

    def _node(self, role: str, nodes: tuple[Node, ...]) -> Node | None:
        located = self.driver.locate(role, list(nodes), self.screen)
        return located.node if located is not None else None

    def role_at(self, nodes: tuple[Node, ...], x: float, y: float) -> tuple[str, Node | None]:
        """The role of what a tap at (x, y) landed on ("" for nothing we record)."""
        inside = [i for i, n in enumerate(nodes) if _contains(n, x, y)]
        top = inside[-1] if inside else None
        target = self._share_target(nodes, x, y)
        if target is not None:
            return "share_target", target
        for role in ("comment_send", "like_button", "comment_button", "share_button"):
            located = self.driver.locate(role, list(nodes), self.screen)
            if located is None:
                continue
            if located.node is None:
                if math.dist(located.point, (x, y)) <= HIT_RADIUS * self.screen[0]:
                    return role, None
            elif top is not None and _under(nodes, top, located.node):
                return role, located.node
        return "", None

    def _share_target(self, nodes: tuple[Node, ...], x: float, y: float) -> Node | None:
        anchor = self._node("share_target", nodes)
        if anchor is None:
            return None
        row = [n for n in nodes if n.clickable and (n.text or n.content_desc)
               and _same_row(n, anchor)]
        return next((n for n in reversed(row) if _contains(n, x, y)), None)

    def on_tap(self, view: ViewState, tap: Gesture, timeline: UiTimeline) -> None:
        """Record what the tap did to the view, judged by the last dump before it."""
        earlier = timeline.before(tap.start, since=view.snapshot.before)
        nodes = earlier[0].nodes if earlier else view.snapshot.nodes
        role, node = self.role_at(nodes, tap.x1, tap.y1)
        if role == "like_button":
            view.like_taps.append(tap.end)
        elif role == "share_target" and node is not None:
            view.actions.append((tap.end, TraceAction(type="share",
                                                      text=node.text or node.content_desc)))
        elif role == "comment_send":
            sent = [t for t, action in view.actions if action.type == "comment"]
            typed = timeline.before(tap.start, since=max(sent, default=view.snapshot.before))
            view.actions.append((tap.end, TraceAction(type="comment", text=self._draft(typed))))

    def _draft(self, snapshots: list[UiSnapshot]) -> str | None:
        """The newest comment text typed: the input's text where the send button was enabled."""
        for snapshot in snapshots:
            send = self._node("comment_send", snapshot.nodes)
            field_ = self._node("comment_input", snapshot.nodes)
            if send is not None and field_ is not None and send.enabled and field_.text:
                return field_.text
        return None

    def liked_state(self, nodes: tuple[Node, ...]) -> bool:
        node = self._node("like_button", nodes)
        return node is not None and (node.checked or node.selected)

    def actions(self, view: ViewState, last: UiSnapshot | None, end: float) -> tuple[
            TraceAction, ...]:
        """The view's actions in the order they happened; the like at its last toggle."""
        events = list(view.actions)
        toggled = len(view.like_taps) % 2 == 1
        became = last is not None and self.liked_state(last.nodes) and \
            not self.liked_state(view.snapshot.nodes)
        if toggled or became:
            events.append((view.like_taps[-1] if toggled else end, TraceAction(type="like")))
        return tuple(action for _, action in sorted(events, key=lambda e: e[0]))


def _contains(node: Node, x: float, y: float) -> bool:
    x1, y1, x2, y2 = node.bounds
    return x1 <= x < x2 and y1 <= y < y2


def _under(nodes: tuple[Node, ...], top: int, node: Node) -> bool:
    """The topmost node hit is `node` or lies inside it and after it (a child, such as the
    icon inside a clickable layout); a sheet drawn over it is bigger, so it is not."""
    if nodes[top] == node:
        return True
    x1, y1, x2, y2 = nodes[top].bounds
    a1, b1, a2, b2 = node.bounds
    return top > nodes.index(node) and a1 <= x1 and b1 <= y1 and x2 <= a2 and y2 <= b2


def _same_row(node: Node, anchor: Node) -> bool:
    """Beside the anchor and about its size (not the full-screen video under the sheet)."""
    top, bottom = max(node.bounds[1], anchor.bounds[1]), min(node.bounds[3], anchor.bounds[3])
    height = anchor.bounds[3] - anchor.bounds[1]
    own = node.bounds[3] - node.bounds[1]
    return height > 0 and bottom - top >= height / 2 and own <= 1.5 * height
