"""Model clients: the contract, and the factory that picks one from the settings."""
from __future__ import annotations

from ..config import Settings
from ..errors import ConfigError
from .base import ChatClient, Completion, ReplyStream, complete
from .openai_client import OpenAIClient
from .local_llama import LocalLlamaClient
from .unconfigured import UnconfiguredClient


def client_from_settings(settings: Settings) -> ChatClient:
    """OpenAI with a key, the OpenAI-compatible server at OPENAI_BASE_URL, else the bundled offline model.

    If the bundled model cannot be loaded, a stand-in client explains why on every send, so the
    rest of the app still works.
    """
    if settings.api_key or settings.base_url:
        if settings.base_url and not settings.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"OPENAI_BASE_URL must start with http:// or https://, not {settings.base_url!r}.")
        return OpenAIClient(model=settings.model, api_key=settings.api_key, base_url=settings.base_url,
                            timeout_s=settings.timeout_s, max_retries=settings.max_retries,
                            context_tokens=settings.context_tokens)
    try:
        return LocalLlamaClient(settings.local_model_path)
    except ConfigError as exc:
        return UnconfiguredClient(reason=str(exc))


__all__ = ["ChatClient", "Completion", "LocalLlamaClient", "OpenAIClient", "ReplyStream", "UnconfiguredClient", "client_from_settings", "complete"]
