"""What a simulated trace's videos looked like: observations rebuilt from the catalogue.

Synthetic humans' traces record which video was watched, not what was on screen; agents are
trained on what the screen showed. This rebuilds it the way the simulated app shows it (the
text over the video, the transcript, a frame of the video's look), so training samples from
simulated traces match what the agent sees during an audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bubblescope.contracts import Frame, Observation
from bubblescope.personas.schema import TraceRecord
from bubblescope.sim.android.layout import Geometry
from bubblescope.sim.android.render import Renderer
from bubblescope.sim.catalogue import Catalogue, CatalogueConfig, build_catalogue
from bubblescope.sim.in_process_device import observe_video


@dataclass(frozen=True)
class TraceFrames:
    count: int = 1  # frames per video, spread over its first seconds
    width: int = 112  # pixels; the height follows the phone's 9:16
    spacing_s: float = 1.0  # playback seconds between frames


class TraceObserver:
    """Rebuilds the observation for each record of a simulated trace."""

    def __init__(self, catalogue: Catalogue | None = None,
                 frames: TraceFrames = TraceFrames()) -> None:
        self.catalogue = catalogue or build_catalogue(CatalogueConfig())
        self.frames = frames
        width = frames.width
        self.renderer = Renderer(Geometry(width, width * 16 // 9), self.catalogue)

    def _frames(self, video: int) -> tuple[Frame, ...]:
        frames = []
        for i in range(self.frames.count):
            position = i * self.frames.spacing_s
            pixels = self.renderer.video_frame(video, position)
            height, width = pixels.shape[:2]
            frames.append(Frame(pts_s=position, width=width, height=height,
                                data=pixels.tobytes()))
        return tuple(frames)

    def observe(self, record: TraceRecord) -> Observation | None:
        """None when the record's video is not in the simulated catalogue."""
        video = self.catalogue.video_index(record.video_id) if record.video_id else None
        if video is None:
            return None
        started = record.started_at or record.timestamp - timedelta(
            seconds=record.viewing_duration)
        return self.observe_video(video, started)

    def observe_video(self, video: int, started: datetime) -> Observation:
        """What the screen shows for catalogue video number `video`, started at `started`."""
        return observe_video(self.catalogue, video, started, self._frames(video))
