"""Errors of the actors part (coordinator, device actors, run planning, device registry).

    BubblescopeError
    └── ActorsError               (code "actors")

The actors mostly pass on what their parts raise (devices, agent, perception); a failure that
is the actors' own subclasses ActorsError here. Each keeps bubblescope's picklable shape, so it
survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class ActorsError(BubblescopeError, code="actors"):
    """The root of every error the actors part raises."""
