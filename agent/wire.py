"""The policy app's wire: the deployment's name and the request and reply it takes and gives.

Shared by the Serve app (`serve/policy_app.py`) and its client in the device actor
(`agent/serve_client.py`), so neither reaches into the other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bubblescope.contracts import Action, Observation

DEPLOYMENT = "PolicyServer"


class PastView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    observation: Observation
    action: Action


class DecideRequest(BaseModel):
    """One decision: who decides, what is on screen, what came just before (oldest first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    persona: str
    observation: Observation
    history: tuple[PastView, ...] = ()


class DecideReply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: str = Field(description="the model's answer, unparsed")
    adapter: str = Field(description="the adapter that answered; '' for the base model")
    replica: str = Field(description="which replica answered (its process id)")
    batch_size: int = Field(description="decisions generated together with this one")
    adapter_loads: int = Field(default=0, ge=0, description="adapters the replica loaded since "
                               "its previous answer")
    adapter_evictions: int = Field(default=0, ge=0, description="adapters the replica evicted "
                                   "since its previous answer")


class ClassifyReply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: str = Field(description="the model's answer, unparsed")
    category: str | None = Field(description="'Main/Sub' or 'Main' from the taxonomy, or None")
