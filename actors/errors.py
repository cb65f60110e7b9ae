"""Errors of the actors part (coordinator, device actors, run planning, device registry).

    BubblescopeError
    └── ActorsError               (code "actors")
        └── PhoneWaitExpired      a farm phone stayed offline past devices.adb.online_timeout_s
                                  while the coordinator waited to place its run (also
                                  UnreachableError, exit 3)

The actors mostly pass on what their parts raise (devices, agent, perception); a failure that
is the actors' own subclasses ActorsError here. Each keeps bubblescope's picklable shape, so it
survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, UnreachableError


class ActorsError(BubblescopeError, code="actors"):
    """The root of every error the actors part raises."""


class PhoneWaitExpired(ActorsError, UnreachableError, code="actors.phone-wait-expired"):
    """A farm phone stayed offline (its node down, say) past the job's online timeout."""
