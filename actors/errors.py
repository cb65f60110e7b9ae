"""Errors of the actors part (coordinator, device actors, run planning, device registry).

    BubblescopeError
    └── ActorsError               (code "actors")
        ├── PhoneWaitExpired      a farm phone stayed offline past devices.adb.online_timeout_s
        │                         while the coordinator waited to place its run (also
        │                         UnreachableError, exit 3)
        ├── AccountFileError      the farm's account file or ledger is missing or malformed
        │                         (ConfigError, exit 2)
        ├── NotEnoughFreshAccounts  a job needs more fresh accounts than the farm has
        │                         (ConfigError, exit 2)
        └── AccountStateError     an account cannot make that change (ConfigError, exit 2)

The actors mostly pass on what their parts raise (devices, agent, perception); a failure that
is the actors' own subclasses ActorsError here. Each keeps bubblescope's picklable shape, so it
survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError, UnreachableError


class ActorsError(BubblescopeError, code="actors"):
    """The root of every error the actors part raises."""


class PhoneWaitExpired(ActorsError, UnreachableError, code="actors.phone-wait-expired"):
    """A farm phone stayed offline (its node down, say) past the job's online timeout."""


class AccountFileError(ActorsError, ConfigError, code="actors.account-file"):
    """The farm's account file (or its ledger) is missing or malformed."""


class NotEnoughFreshAccounts(ActorsError, ConfigError, code="actors.not-enough-accounts"):
    """A job needs more fresh accounts on a platform than the farm has."""


class AccountStateError(ActorsError, ConfigError, code="actors.account-state"):
    """An account cannot make that change of state (in use by another job, say)."""
