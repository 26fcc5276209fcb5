"""The model catalog: models with prices and tags, routing rules and budgets, from TOML.

The file is validated as a whole when the gateway starts; a typo fails fast with the
file and the field named, never at the first request that needs the model.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from core.errors import ConfigError
from core.types import Usage

DEFAULT_CATALOG = Path(__file__).parent / "catalog.toml"
Provider = Literal["openai", "anthropic", "openai-compatible"]


class ModelSpec(BaseModel, frozen=True):
    name: str = Field(min_length=1)
    provider: Provider
    model: str = Field(min_length=1, description="The provider's model id")
    endpoint: str | None = None
    context_window: int = Field(gt=0)
    input_per_mtok: float = Field(ge=0, description="USD per 1M input tokens")
    output_per_mtok: float = Field(ge=0, description="USD per 1M output tokens")
    tags: frozenset[str] = frozenset()
    timeout_s: float = Field(default=30.0, gt=0)
    max_output_tokens: int = Field(default=512, gt=0)

    @model_validator(mode="after")
    def _compatible_needs_endpoint(self) -> ModelSpec:
        if self.provider == "openai-compatible" and not self.endpoint:
            raise ValueError(f"{self.name}: an openai-compatible model needs an endpoint")
        return self

    @model_validator(mode="after")
    def _room_for_a_prompt(self) -> ModelSpec:
        if self.max_output_tokens >= self.context_window:
            raise ValueError(
                f"{self.name}: max_output_tokens ({self.max_output_tokens}) leaves no room "
                f"for a prompt in its context_window ({self.context_window})"
            )
        return self

    @property
    def prompt_tokens(self) -> int:
        """How many prompt tokens fit: the context window less the room kept for the reply
        (servers count both against the window, and refuse a request that overflows it)."""
        return self.context_window - self.max_output_tokens

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / 1e6

    @property
    def blended_price(self) -> float:
        """USD per request of a typical RAG shape (2k tokens in, 250 out): sorts by cost."""
        return self.cost(Usage(2000, 250))


class RoutingPolicy(BaseModel, frozen=True):
    strategy: Literal["rules", "cost", "latency"] = "rules"
    complex_min_words: int = Field(default=25, ge=1)
    complex_markers: tuple[str, ...] = ()
    private_tenants: frozenset[str] = frozenset()


class Budget(BaseModel, frozen=True):
    daily_soft_usd: float | None = Field(default=None, ge=0)
    daily_hard_usd: float | None = Field(default=None, ge=0)
    monthly_soft_usd: float | None = Field(default=None, ge=0)
    monthly_hard_usd: float | None = Field(default=None, ge=0)


class Budgets(BaseModel, frozen=True):
    default: Budget = Budget()
    tenants: dict[str, Budget] = {}

    def for_tenant(self, tenant: str) -> Budget:
        return self.tenants.get(tenant, self.default)


class Catalog(BaseModel, frozen=True):
    version: int = Field(ge=1)
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    routing: RoutingPolicy = RoutingPolicy()
    budgets: Budgets = Budgets()

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def get(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        known = ", ".join(m.name for m in self.models)
        raise ConfigError(f"model {name!r} is not in the catalog; known: {known}")


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog file; any problem is a ConfigError naming the file."""
    path = path or DEFAULT_CATALOG
    try:
        return Catalog.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read the model catalog {path}: {exc}") from exc
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"the model catalog {path} is invalid: {exc}") from exc
