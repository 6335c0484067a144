"""What every provider entry in the config has: its name, type, switch,
circuit breaker and upstream limits. Each adapter's `Options` extends
`ProviderConfig` with its own fields; the gateway's config schema uses these
as they are."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BreakerConfig(_Strict):
    failures: int = Field(5, ge=1)        # consecutive failures that open the circuit
    cooldown_s: float = Field(30, gt=0)   # how long it stays open before one probe


class ProviderLimits(_Strict):
    """An upstream's own quota, across every key and model: a target at its limit
    is skipped by the router like one that answered 429."""
    rpm: int | None = Field(None, ge=0)
    tpm: int | None = Field(None, ge=0)
    concurrent: int | None = Field(None, ge=0)


class ProviderConfig(BaseModel):
    """Fields every provider has; adapters add their own (see providers/*/Options)."""
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    enabled: bool = True
    breaker: BreakerConfig | None = None
    limits: ProviderLimits | None = None
