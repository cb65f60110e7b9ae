"""Frames of the virtual phone's screen: the playing video under the app's overlays.

A video's look comes from its category, so a vision model can learn categories from frames:
the hue from the main category, the pattern (stripes, checks, rings, dots...) from the
subcategory, the shade from the video itself. The pattern scrolls and a disc drifts with the
playback position, so consecutive frames differ. Speed matters (a scrcpy stream wants 30+
frames a second on a slow CPU), so everything that does not move is drawn once and cached:
the pattern as a tile-repeated texture that is sliced per frame, the overlays (text, buttons,
sheets) as small RGBA patches per distinct screen state, the launcher as a whole frame.
"""

from __future__ import annotations

import colorsys
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bubblescope.sim.android.layout import COMMENT_HINT, Geometry, View, launcher_tree
from bubblescope.sim.catalogue import Catalogue

PATTERNS = ("hstripes", "vstripes", "diagonal", "checks", "rings", "dots")


@dataclass(frozen=True)
class ScreenState:
    """What is on screen, captured under the phone's lock and drawn outside it."""

    kind: str  # "off", "launcher" or "app"
    tree: View | None = None
    video: int | None = None
    position_s: float = 0.0
    duration_s: float = 1.0
    sheet_top: int | None = None  # the feed above an open sheet is dimmed


@dataclass
class _Look:
    texture: Image.Image  # (W + period) x (H + period), pasted at minus the scroll offset
    dimmed: Image.Image  # the same at half brightness, behind an open sheet
    disc: Image.Image  # RGBA sprite that drifts over the video
    phase: float


def _pattern(kind: str, period: int) -> np.ndarray:
    """One period x period tile of the pattern, as 0/1 weights of the second colour."""
    y, x = np.mgrid[0:period, 0:period]
    half = period // 2
    radius = np.hypot(x - half, y - half)
    shapes = {
        "hstripes": (y // half) % 2,
        "vstripes": (x // half) % 2,
        "diagonal": ((x + y) // half) % 2,
        "checks": (x // half + y // half) % 2,
        "rings": (radius // (period / 6)).astype(int) % 2,
        "dots": radius < period / 4,
    }
    return shapes[kind].astype(np.float32)



def default_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at a size; the bitmap fallback where FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


WHITE, BLACK, RED = (255, 255, 255, 255), (0, 0, 0, 255), (254, 44, 85, 255)
GREY = (150, 150, 150, 255)
PANEL, FIELD, INK = (250, 250, 250, 255), (235, 235, 238, 255), (22, 24, 35, 255)


class _Widgets:
    """Draws the app's views once per screen state; the renderer pastes the result per frame."""

    def __init__(self, geometry: Geometry) -> None:
        self.geometry = geometry
        self._fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}

    def font(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        size = max(8, self.geometry.px(size))
        if size not in self._fonts:
            self._fonts[size] = default_font(size)
        return self._fonts[size]

    def disc(self, rgb: tuple[int, ...]) -> Image.Image:
        r = self.geometry.px(56)
        sprite = Image.new("RGBA", (2 * r, 2 * r), (0, 0, 0, 0))
        ImageDraw.Draw(sprite).ellipse((0, 0, 2 * r - 1, 2 * r - 1), fill=(*rgb, 230))
        return sprite

    def _text(self, draw: ImageDraw.ImageDraw, view: View, size: int, fill: tuple,
              stroke: bool = False, center: bool = False) -> None:
        font = self.font(size)
        x1, y1, x2, y2 = view.bounds
        text = view.text
        if draw.textlength(text, font=font) > x2 - x1:  # ellipsize at the end, as TextView does
            while text and draw.textlength(text + "...", font=font) > x2 - x1:
                text = text[:-1]
            text = text.rstrip() + "..."
        width = draw.textlength(text, font=font)
        x = (x1 + x2 - width) / 2 if center else x1
        draw.text((x, (y1 + y2) / 2), text, font=font, fill=fill, anchor="lm",
                  stroke_width=2 if stroke else 0, stroke_fill=BLACK)

    def _icon(self, draw: ImageDraw.ImageDraw, view: View) -> None:
        x1, y1, x2, y2 = view.bounds
        cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.36
        if view.name == "like_button":  # a heart: two lobes and a point
            fill = RED if view.checked else WHITE
            draw.ellipse((cx - r, cy - r * 0.8, cx, cy + r * 0.2), fill=fill)
            draw.ellipse((cx, cy - r * 0.8, cx + r, cy + r * 0.2), fill=fill)
            draw.polygon([(cx - r * 0.97, cy - r * 0.15), (cx + r * 0.97, cy - r * 0.15),
                          (cx, cy + r)], fill=fill)
        elif view.name == "comment_button":  # a speech bubble
            draw.rounded_rectangle((cx - r, cy - r * 0.8, cx + r, cy + r * 0.5), r * 0.4, WHITE)
            draw.polygon([(cx - r * 0.5, cy + r * 0.4), (cx - r * 0.6, cy + r),
                          (cx, cy + r * 0.4)], fill=WHITE)
        else:  # an arrow to the right
            draw.polygon([(cx + r, cy - r * 0.1), (cx + r * 0.1, cy - r * 0.9),
                          (cx + r * 0.1, cy + r * 0.7)], fill=WHITE)
            draw.rectangle((cx - r, cy - r * 0.35, cx + r * 0.2, cy + r * 0.15), fill=WHITE)

    def _draw_feed_view(self, draw: ImageDraw.ImageDraw, view: View) -> None:
        sizes = {"title": 30, "author": 26, "caption": 24}
        if view.name in sizes:
            self._text(draw, view, sizes[view.name], WHITE, stroke=True)
        elif view.name.endswith("_count"):
            self._text(draw, view, 24, WHITE, stroke=True, center=True)
        elif view.name.endswith("_button"):
            self._icon(draw, view)

    def _draw_sheet_view(self, draw: ImageDraw.ImageDraw, view: View) -> None:
        x1, y1, x2, y2 = view.bounds
        radius = self.geometry.px(16)
        if view.name.endswith("_sheet"):  # square corners: the patch is pasted opaque
            draw.rectangle(view.bounds, PANEL)
        elif view.name.endswith("_header"):
            self._text(draw, view, 28, INK)
        elif view.name == "comment_close":
            pad = (x2 - x1) * 0.3
            draw.line((x1 + pad, y1 + pad, x2 - pad, y2 - pad), INK, self.geometry.px(5))
            draw.line((x1 + pad, y2 - pad, x2 - pad, y1 + pad), INK, self.geometry.px(5))
        elif view.name == "comment_input":
            draw.rounded_rectangle(view.bounds, radius, FIELD)
            inset = View(view.cls, view.package, (x1 + radius, y1, x2 - radius, y2),
                         text=view.text)
            self._text(draw, inset, 26, INK if view.text != COMMENT_HINT else GREY)
        else:  # Send, Cancel and the share targets: a filled button with a label
            fill = RED if view.enabled and view.name == "comment_send" else FIELD
            draw.rounded_rectangle(view.bounds, radius, fill)
            self._text(draw, view, 26, WHITE if fill == RED else INK, center=True)

    def overlay_patches(self, tree: View) -> list[tuple[Image.Image, tuple[int, int]]]:
        """The overlays as (patch, top-left) pairs: RGBA over the video, RGB for a sheet."""
        layer = Image.new("RGBA", (self.geometry.width, self.geometry.height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        feed = [v for v in tree.children if v.name in ("title", "author", "caption")
                or v.name.endswith(("_button", "_count"))]
        sheets = [v for v in tree.children if v.name.endswith("_sheet")]
        for view in feed:
            self._draw_feed_view(draw, view)
        if sheets:  # dim what lies behind the sheet, as the scrim dims the video
            r, g, b, a = layer.split()
            layer = Image.merge("RGBA", (*(c.point(lambda v: v // 2) for c in (r, g, b)), a))
            draw = ImageDraw.Draw(layer)
        patches = []
        for view in feed:
            box = _grow(view.bounds, 3, self.geometry)
            patch = layer.crop(box)
            if patch.getbbox() is not None:
                patches.append((patch, box[:2]))
        for sheet in sheets:
            for view in sheet.walk():
                self._draw_sheet_view(draw, view)
            patches.append((layer.crop(sheet.bounds).convert("RGB"), sheet.bounds[:2]))
        return patches

    def launcher_icon(self, draw: ImageDraw.ImageDraw, icon: View) -> None:
        x1, y1, x2, y2 = icon.bounds
        side = x2 - x1
        draw.rounded_rectangle((x1, y1, x2, y1 + side), side // 5, fill=(254, 44, 85))
        cx, cy, r = (x1 + x2) / 2, y1 + side / 2, side * 0.25
        draw.polygon([(cx - r * 0.7, cy - r), (cx - r * 0.7, cy + r), (cx + r, cy)], fill=WHITE)
        label = View(icon.cls, icon.package, (x1 - side, y1 + side, x2 + side, y2), text=icon.text)
        self._text(draw, label, 24, WHITE, center=True)


def _grow(rect: tuple[int, int, int, int], by: int, g: Geometry) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = rect
    return max(0, x1 - by), max(0, y1 - by), min(g.width, x2 + by), min(g.height, y2 + by)


class Renderer:
    def __init__(self, geometry: Geometry, catalogue: Catalogue) -> None:
        self.geometry, self.catalogue = geometry, catalogue
        self.period = max(16, geometry.px(96))
        self._looks: OrderedDict[int, _Look] = OrderedDict()
        self._overlays: OrderedDict[tuple, list[tuple[Image.Image, tuple[int, int]]]] = (
            OrderedDict())
        self._widgets = _Widgets(geometry)
        self._launcher: np.ndarray | None = None
        self._canvas = Image.new("RGB", (geometry.width, geometry.height))
        self._black = np.zeros((geometry.height, geometry.width, 3), np.uint8)
        self._black.setflags(write=False)
        subs_of_main: dict[int, int] = {}
        self._sub_rank = []  # a sub's position among its main category's subs
        for main in catalogue.taxonomy.sub_main:
            self._sub_rank.append(subs_of_main.get(main, 0))
            subs_of_main[main] = self._sub_rank[-1] + 1

    def style(self, video: int) -> tuple[float, str]:
        """(hue, pattern) of a video: hue from its main category, pattern from its sub."""
        sub = int(self.catalogue.video_sub[video])
        main = self.catalogue.taxonomy.sub_main[sub]
        return main / len(self.catalogue.taxonomy.mains), PATTERNS[self._sub_rank[sub] % 6]

    def _look(self, video: int) -> _Look:
        if video in self._looks:
            self._looks.move_to_end(video)
            return self._looks[video]
        hue, kind = self.style(video)
        rng = np.random.default_rng([self.catalogue.config.seed, video])
        sat, val = rng.uniform(0.55, 0.85), rng.uniform(0.45, 0.75)
        first = np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255
        light = colorsys.hsv_to_rgb((hue + 0.06) % 1, sat * 0.6, min(1, val + 0.25))
        second = np.array(light) * 255
        weight = _pattern(kind, self.period)[..., None]
        tile = (first * (1 - weight) + second * weight).astype(np.uint8)
        g, p = self.geometry, self.period
        texture = np.tile(tile, ((g.height + p) // p + 1, (g.width + p) // p + 1, 1))
        texture = np.ascontiguousarray(texture[: g.height + p, : g.width + p])
        disc_rgb = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((hue + 0.5) % 1, 0.7, 1.0))
        look = _Look(Image.fromarray(texture), Image.fromarray(texture >> 1),
                     self._widgets.disc(disc_rgb), float(rng.uniform(0, 6.28)))
        self._looks[video] = look
        while len(self._looks) > 4:
            self._looks.popitem(last=False)
        return look

    def _video_frame(self, state: ScreenState) -> Image.Image:
        """The video into the reused canvas: pasting a texture at a negative offset copies
        just the visible window, with no per-frame allocation (fresh 3 MB buffers cost more
        in page faults than the copy itself)."""
        assert state.video is not None
        look, g, p = self._look(state.video), self.geometry, self.period
        t = state.position_s
        oy, ox = int(t * g.px(40)) % p, int(t * g.px(12)) % p
        # an open sheet covers the bottom, so the whole dimmed texture can go in
        self._canvas.paste(look.dimmed if state.sheet_top is not None else look.texture,
                           (-ox, -oy))
        r = look.disc.width // 2
        cx = g.width / 2 + 0.3 * g.width * math.sin(0.9 * t + look.phase)
        cy = 0.4 * g.height + 0.2 * g.height * math.sin(0.6 * t + 2 * look.phase)
        self._canvas.paste(look.disc, (int(cx) - r, int(cy) - r), look.disc)
        return self._canvas

    def video_frame(self, video: int, position_s: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the video alone at `position_s`, without the app's overlays."""
        state = ScreenState("app", video=video, position_s=position_s)
        return np.array(self._video_frame(state))

    def _overlay(self, tree: View) -> list[tuple[Image.Image, tuple[int, int]]]:
        key = tuple((v.name, v.text, v.checked, v.enabled, v.bounds) for v in tree.walk())
        if key not in self._overlays:
            self._overlays[key] = self._widgets.overlay_patches(tree)
            while len(self._overlays) > 16:
                self._overlays.popitem(last=False)
        self._overlays.move_to_end(key)
        return self._overlays[key]

    def _launcher_frame(self) -> np.ndarray:
        if self._launcher is None:
            g = self.geometry
            shade = np.linspace(0, 1, g.height, dtype=np.float32)[:, None, None]
            top, bottom = np.array([40, 60, 120]), np.array([10, 20, 40])
            wallpaper = (top * (1 - shade) + bottom * shade).astype(np.uint8)
            image = Image.fromarray(np.repeat(wallpaper, g.width, axis=1))
            icon = launcher_tree(g).children[0]
            self._widgets.launcher_icon(ImageDraw.Draw(image), icon)
            self._launcher = np.asarray(image)
        return self._launcher

    def render(self, state: ScreenState) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the screen, read-only (copy it to draw on it)."""
        g = self.geometry
        if state.kind == "off":
            return self._black
        if state.kind == "launcher" or state.tree is None or state.video is None:
            return self._launcher_frame()
        image = self._video_frame(state)
        for patch, where in self._overlay(state.tree):
            image.paste(patch, where, patch if patch.mode == "RGBA" else None)
        progress = (state.position_s % state.duration_s) / state.duration_s
        ImageDraw.Draw(image).rectangle(
            (0, g.height - g.px(6), int(g.width * progress), g.height), fill=(255, 255, 255))
        return np.asarray(image)  # a fresh read-only array: the canvas is reused

