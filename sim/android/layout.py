"""Screen geometry and the view tree of what the virtual phone shows.

One tree serves three readers: the uiautomator dump (what a driver sees), the renderer (where
each overlay is painted) and touch dispatch (which view a tap lands on). Because all three
read the same bounds, a tap at the centre of a dumped `like_button` is guaranteed to hit it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from bubblescope.sim.feed_screen import FeedScreen

PACKAGE = "org.bubblescope.shortvideo"
ACTIVITY = ".FeedActivity"
APP_LABEL = "ShortVideo"
LAUNCHER_PACKAGE = "com.android.launcher3"
LAUNCHER_ACTIVITY = "com.android.launcher3.uioverride.QuickstepLauncher"
COMMENT_HINT = "Add a comment…"
SHARE_TARGETS = ("Friends", "Copy link", "Moments")

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in screen pixels, x2/y2 exclusive


@dataclass
class View:
    """One node of the tree, with the attributes uiautomator reports."""

    cls: str
    package: str
    bounds: Rect
    name: str = ""  # resource-id name, without the `pkg:id/` prefix
    text: str = ""
    desc: str = ""
    clickable: bool = False
    focusable: bool = False
    focused: bool = False
    checkable: bool = False
    checked: bool = False
    selected: bool = False
    scrollable: bool = False
    long_clickable: bool = False
    password: bool = False
    enabled: bool = True
    consumes: bool = False  # swallows touches without being clickable (a sheet's panel)
    children: list[View] = field(default_factory=list)

    @property
    def resource_id(self) -> str:
        return f"{self.package}:id/{self.name}" if self.name else ""

    @property
    def center(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.bounds
        return (x1 + x2) // 2, (y1 + y2) // 2

    def contains(self, x: float, y: float) -> bool:
        x1, y1, x2, y2 = self.bounds
        return x1 <= x < x2 and y1 <= y < y2

    def walk(self) -> Iterator[View]:
        """Depth first, in paint order: a later view is drawn over an earlier one."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> View | None:
        return next((v for v in self.walk() if v.name == name), None)


def hit_test(root: View, x: float, y: float) -> View | None:
    """The topmost view under (x, y) that takes touches, as Android dispatches a tap."""
    hit = None
    for view in root.walk():
        if (view.clickable or view.consumes) and view.contains(x, y):
            hit = view
    return hit


@dataclass(frozen=True)
class Geometry:
    """Where everything sits, laid out for 720 px wide and scaled to the real width."""

    width: int
    height: int

    def px(self, value: float) -> int:
        return round(value * self.width / 720)

    def right_button(self, index: int) -> tuple[Rect, Rect]:
        """The index-th button of the right column and the count label under it."""
        cx, size = self.width - self.px(60), self.px(96)
        top = int(self.height * 0.46) + index * self.px(170)
        button = (cx - size // 2, top, cx + size // 2, top + size)
        label = (self.width - self.px(120), top + size + self.px(4), self.width,
                 top + size + self.px(40))
        return button, label

    def text_line(self, index: int) -> Rect:
        """Line 0..2 of the bottom-left block (title, author, caption)."""
        step = self.px(50)
        y1 = self.height - self.px(120) - (3 - index) * step
        return self.px(24), y1, self.width - self.px(150), y1 + self.px(44)

    def sheet_top(self, sheet: str) -> int:
        return int(self.height * (0.45 if sheet == "comment" else 0.68))


def _text(name: str, text: str, rect: Rect) -> View:
    return View("android.widget.TextView", PACKAGE, rect, name=name, text=text)


def _button(name: str, desc: str, rect: Rect, **flags: bool) -> View:
    return View("android.widget.ImageView", PACKAGE, rect, name=name, desc=desc,
                clickable=True, focusable=True, **flags)


def _comment_sheet(geo: Geometry, content: FeedScreen) -> View:
    w, h, top = geo.width, geo.height, geo.sheet_top("comment")
    p = geo.px
    header = _text("comment_header", f"{content.comment_count} comments",
                   (p(24), top + p(20), w - p(120), top + p(76)))
    close = _button("comment_close", "Close", (w - p(104), top + p(8), w - p(16), top + p(96)))
    field_ = View("android.widget.EditText", PACKAGE, (p(24), h - p(124), w - p(168), h - p(36)),
                  name="comment_input", text=content.draft or COMMENT_HINT, clickable=True,
                  focusable=True, focused=True, long_clickable=True)
    send = View("android.widget.Button", PACKAGE, (w - p(152), h - p(124), w - p(24), h - p(36)),
                name="comment_send", text="Send", clickable=True, focusable=True,
                enabled=bool(content.draft.strip()))
    return View("android.widget.FrameLayout", PACKAGE, (0, top, w, h), name="comment_sheet",
                consumes=True, children=[header, close, field_, send])


def _share_sheet(geo: Geometry) -> View:
    w, h, top = geo.width, geo.height, geo.sheet_top("share")
    p = geo.px
    header = _text("share_header", "Share to", (p(24), top + p(20), w - p(24), top + p(76)))
    children = [header]
    cell = (w - p(48)) // len(SHARE_TARGETS)
    for i, label in enumerate(SHARE_TARGETS):
        x1 = p(24) + i * cell
        name = "share_target_" + label.lower().replace(" ", "_")
        children.append(View("android.widget.Button", PACKAGE,
                             (x1 + p(8), top + p(100), x1 + cell - p(8), top + p(250)),
                             name=name, text=label, clickable=True, focusable=True))
    cancel = (p(24), h - p(110), w - p(24), h - p(30))
    children.append(View("android.widget.Button", PACKAGE, cancel,
                         name="share_cancel", text="Cancel", clickable=True, focusable=True))
    return View("android.widget.FrameLayout", PACKAGE, (0, top, w, h), name="share_sheet",
                consumes=True, children=children)


def feed_tree(geo: Geometry, content: FeedScreen) -> View:
    """The feed activity: the full-screen video, its text, the right column, an open sheet."""
    (like, like_n), (comment, comment_n), (share, share_n) = (geo.right_button(i) for i in range(3))
    children = [
        View("android.view.View", PACKAGE, (0, 0, geo.width, geo.height), name="video_view",
             desc="Video", clickable=True, focusable=True),
        _text("title", content.title, geo.text_line(0)),
        _text("author", f"@{content.author}", geo.text_line(1)),
        _text("caption", content.caption, geo.text_line(2)),
        _button("like_button", "Like", like, checkable=True, checked=content.liked,
                selected=content.liked),
        _text("like_count", str(content.like_count), like_n),
        _button("comment_button", "Comment", comment),
        _text("comment_count", str(content.comment_count), comment_n),
        _button("share_button", "Share", share),
        _text("share_count", str(content.share_count), share_n),
    ]
    if content.sheet == "comment":
        children.append(_comment_sheet(geo, content))
    elif content.sheet == "share":
        children.append(_share_sheet(geo))
    return View("android.widget.FrameLayout", PACKAGE, (0, 0, geo.width, geo.height),
                children=children)


def launcher_tree(geo: Geometry) -> View:
    """The home screen: one icon, which starts the app when tapped."""
    size, cx, cy = geo.px(144), geo.width // 2, int(geo.height * 0.4)
    icon = View("android.widget.TextView", LAUNCHER_PACKAGE,
                (cx - size // 2, cy - size // 2, cx + size // 2, cy + size // 2 + geo.px(40)),
                name="icon", text=APP_LABEL, desc=APP_LABEL, clickable=True, focusable=True,
                long_clickable=True)
    return View("android.widget.FrameLayout", LAUNCHER_PACKAGE, (0, 0, geo.width, geo.height),
                children=[icon])
