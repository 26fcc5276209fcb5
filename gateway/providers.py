"""Which adapter serves a catalog entry: `build_chat_model`, the one place that picks.

- `gateway.openai_chat.OpenAIChat`: OpenAI, and every OpenAI-compatible server (vLLM,
  Ollama, LM Studio, llama.cpp's server) through `base_url`.
- `gateway.anthropic_chat.AnthropicChat`: Anthropic's Messages API.

Why the SDKs and not LiteLLM or LangChain chat models: docs/adr/0011 (import time,
per-call overhead, offline behaviour, measured). Each adapter module is imported only
when a model of its provider is configured (`import anthropic` alone takes ~2 s). What
the adapters share (SDK errors as `ProviderError`s, token estimates) is `gateway.wire`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.settings import LlmSettings
from gateway.catalog import ModelSpec

if TYPE_CHECKING:
    import httpx2

    from core.ports import ChatModel


def build_chat_model(
    spec: ModelSpec, settings: LlmSettings, http_client: httpx2.Client | None = None
) -> ChatModel:
    """The adapter for a catalog entry, with its key from settings (never from os.environ)."""
    endpoint = settings.endpoints.get(spec.name)
    if endpoint:
        spec = spec.model_copy(update={"endpoint": endpoint})
    if spec.provider == "anthropic":
        from gateway.anthropic_chat import AnthropicChat

        key = settings.anthropic_api_key
        if key is None:
            raise ConfigError(f"{spec.name} needs RAG_LLM__ANTHROPIC_API_KEY")
        return AnthropicChat(spec, key.get_secret_value(), http_client)
    from gateway.openai_chat import OpenAIChat

    if spec.provider == "openai":
        key = settings.openai_api_key
        if key is None:
            raise ConfigError(f"{spec.name} needs RAG_LLM__OPENAI_API_KEY")
        return OpenAIChat(spec, key.get_secret_value(), http_client)
    return OpenAIChat(spec, None, http_client)
