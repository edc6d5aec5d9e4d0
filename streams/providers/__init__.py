"""HTTP clients for model providers; each turns a job into one chat completion.

``client_for`` picks the client by the model's wire API. The clients import
``base``; nothing in the package imports this ``__init__`` back, so there is
no import circle.
"""

import httpx

from schemas.config import ModelSpec
from streams.providers.anthropic import AnthropicClient
from streams.providers.base import Completion, ProviderClient
from streams.providers.openai_compat import OpenAICompatibleClient

CLIENTS: dict[str, type[ProviderClient]] = {
    "anthropic": AnthropicClient,
    "openai": OpenAICompatibleClient,
}


def client_for(model: ModelSpec, http: httpx.AsyncClient) -> ProviderClient:
    """The client for ``model``'s wire API (OpenAI-compatible unless it says otherwise)."""
    return CLIENTS.get(model.api, OpenAICompatibleClient)(model, http)


__all__ = ["CLIENTS", "Completion", "ProviderClient", "client_for"]
