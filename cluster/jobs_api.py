"""The Ray Jobs API as bubblescope uses it: the dashboard address, its token, a client whose
every request has a timeout, and the SDK's exceptions turned into one-line errors.

Authentication (Ray >= 2.52 token auth): the dashboard wants `Authorization: Bearer <token>`
from clients when the cluster runs with RAY_AUTH_MODE=token, which Ray 2.59+ turns on by default
for a cluster started on a machine that has ~/.ray/auth_token (`ray.init()` writes it). The Jobs
SDK sends a token only when RAY_AUTH_MODE=token is set in the client's environment, so we
resolve it ourselves, in Ray's order: RAY_AUTH_TOKEN, the file named by RAY_AUTH_TOKEN_PATH,
then ~/.ray/auth_token. The default file is sent only to a head on this machine (a head
elsewhere has its own token, and ours should not travel); for a remote cluster set
RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, or RAY_AUTH_MODE=token with the cluster's token copied to
~/.ray/auth_token); `ray get-auth-token` on the head prints it. RAY_AUTH_MODE=disabled sends none.

Address: the dashboard URL (http://HEAD:8265). As everywhere in Ray, RAY_API_SERVER_ADDRESS or
RAY_ADDRESS, when set, override it; we say so.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bubblescope.cluster.errors import (
    ClusterAuthError,
    ClusterRequestError,
    ClusterUnreachableError,
    SubmissionNotFoundError,
)
from bubblescope.errors import BubblescopeError, ConfigError

REQUEST_TIMEOUT_S = 30.0  # every HTTP request to the dashboard
ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")  # Ray's precedence
FIX_ADDRESS = ("check that the head is up and that --address is its dashboard URL, "
               "e.g. http://HEAD:8265 (`ray start --head --dashboard-host=0.0.0.0`)")


# --- address and token ---------------------------------------------------------------------

def say(message: str) -> None:
    """Notes and warnings go to stderr; stdout carries results and logs."""
    print(message, file=sys.stderr, flush=True)


def resolve_address(flag: str | None, env: Mapping[str, str]) -> str:
    """The dashboard address the Jobs SDK will really use (Ray lets the environment win)."""
    for name in ADDRESS_ENV:
        if env.get(name):
            if flag and flag != env[name]:
                say(f"warning: {name}={env[name]} overrides --address {flag}; unset it to "
                    "use --address")
            return env[name]
    if not flag:
        raise ConfigError("name the cluster with --address http://HEAD:8265 (its dashboard URL)")
    if "://" not in flag:
        return f"http://{flag.rstrip('/')}"
    if urlsplit(flag).scheme not in ("http", "https"):
        raise ConfigError(f"--address {flag}: give the dashboard URL, e.g. http://HEAD:8265")
    return flag.rstrip("/")


def is_local(address: str) -> bool:
    """A head on this machine: only it may receive the token in ~/.ray/auth_token unasked."""
    host = urlsplit(address if "://" in address else f"http://{address}").hostname or ""
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(env: Mapping[str, str], home: Path, local: bool) -> str | None:
    if env.get("RAY_AUTH_TOKEN"):
        return env["RAY_AUTH_TOKEN"].strip()
    path = env.get("RAY_AUTH_TOKEN_PATH")
    if path:
        try:
            return Path(path).expanduser().read_text("utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read the Ray token file RAY_AUTH_TOKEN_PATH={path} "
                              f"({exc.strerror}); fix or unset it") from exc
    default = home / ".ray" / "auth_token"
    if (local or env.get("RAY_AUTH_MODE", "").lower() == "token") and default.is_file():
        return default.read_text("utf-8").strip() or None
    return None


def auth_headers(address: str, env: Mapping[str, str], home: Path) -> dict[str, str]:
    """The Authorization header for the dashboard, when a token is configured (see above)."""
    if env.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return {}
    token = _token(env, home, is_local(address))
    return {"Authorization": f"Bearer {token}"} if token else {}


# --- talking to the dashboard --------------------------------------------------------------

@functools.cache
def _client_class() -> type:
    """JobSubmissionClient with a timeout on every request: the SDK sets none, so a silent
    head would hang us forever. Built lazily: importing Ray slows down every CLI call."""
    from ray.job_submission import JobSubmissionClient

    class _Client(JobSubmissionClient):
        def _do_request(self, method: str, endpoint: str, **kwargs: Any):
            kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
            return super()._do_request(method, endpoint, **kwargs)

    return _Client


@contextmanager
def cluster_errors(address: str) -> Iterator[None]:
    """Turn the SDK's exceptions into one-line errors that name the address and the fix."""
    import aiohttp
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        raise _auth_error(address, str(exc).splitlines()[0]) from exc
    except aiohttp.WSServerHandshakeError as exc:
        raise _http_error(address, exc.status, exc.message) from exc
    except (TimeoutError, OSError) as exc:
        raise ClusterUnreachableError(f"cannot reach the Ray dashboard at {address} "
                                      f"({_reason(exc)}); {FIX_ADDRESS}") from exc
    except RuntimeError as exc:
        raise _runtime_error(address, exc) from exc


def _runtime_error(address: str, exc: RuntimeError) -> BubblescopeError:
    """The SDK reports HTTP failures as RuntimeError("... status code N: body")."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Version check" in text:  # something answers there, but not a Ray dashboard
        return ClusterUnreachableError(f"{address} is not a Ray dashboard ({text}); "
                                       f"{FIX_ADDRESS}")
    found = re.search(r"status code (\d+): (.*)", str(exc), re.S)
    if not found:
        return ClusterRequestError(f"{address}: {text}")
    return _http_error(address, int(found[1]), found[2])


def _reason(exc: BaseException) -> str:
    """The socket's own words ("Connection refused"), not the SDK's wrapper around them."""
    for error in (exc, exc.__context__, exc.__cause__):
        found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error or ""))
        if found:
            return found[1].strip()
    if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
        return f"no answer within {REQUEST_TIMEOUT_S:g} s"
    return type(exc).__name__


def _auth_error(address: str, detail: str) -> ClusterAuthError:
    return ClusterAuthError(
        f"the Ray cluster at {address} requires its token ({detail}); set RAY_AUTH_TOKEN (or "
        "RAY_AUTH_TOKEN_PATH) to the cluster's token, from `ray get-auth-token` on the head")


def _http_error(address: str, status: int, text: str) -> BubblescopeError:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback"):  # a server-side crash: its last line says why
        lines = lines[-1:]
    text = " ".join(" ".join(lines).split()).rstrip(".")[:200]
    if status in (401, 403):
        return _auth_error(address, text)
    if status == 404:
        return SubmissionNotFoundError(f"{address}: {text}; list submissions with "
                                       f"`bubblescope jobs --address {address}`")
    if 400 <= status < 500:
        return ConfigError(f"{address} refused the request ({status}): {text}")
    return ClusterRequestError(f"{address} failed the request ({status}): {text}")


def connect(address: str, env: Mapping[str, str] | None = None, home: Path | None = None):
    """A Jobs API client for `address`, authenticated and checked to answer."""
    env = os.environ if env is None else env
    headers = auth_headers(address, env, Path.home() if home is None else home)
    with cluster_errors(address):
        return _client_class()(address, headers=headers)


