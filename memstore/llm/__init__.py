"""Model clients: the contract, and the factory that picks one from the settings."""
from __future__ import annotations

from ..config import Settings
from ..errors import ConfigError
from .base import ChatClient, Completion, ReplyStream, complete
from .openai_client import OpenAIClient


def client_from_settings(settings: Settings) -> ChatClient:
    """The configured model: OpenAI with a key, or the OpenAI-compatible server at OPENAI_BASE_URL."""
    if settings.api_key or settings.base_url:
        return OpenAIClient(model=settings.model, api_key=settings.api_key, base_url=settings.base_url,
                            timeout_s=settings.timeout_s, max_retries=settings.max_retries,
                            context_tokens=settings.context_tokens)
    raise ConfigError("No model is configured: set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL for a "
                      "local OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp).")


__all__ = ["ChatClient", "Completion", "OpenAIClient", "ReplyStream", "client_from_settings", "complete"]
