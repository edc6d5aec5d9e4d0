"""HTTP clients for model providers; each turns a job into one chat completion."""

from streams.providers.base import Completion, ProviderClient, client_for

__all__ = ["Completion", "ProviderClient", "client_for"]
