"""Model clients: the contract, and the factory that makes a client for any model the picker offers."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..errors import ConfigError
from .base import ChatClient, Completion, ReplyStream, complete
from .catalog import ModelChoice, bundled_choice, configured_choice, default_key
from .local_server import LocalServers, ServerSpec, local_client
from .openai_client import OpenAIClient
from .unconfigured import UnconfiguredClient


def client_for(choice: ModelChoice, settings: Settings, servers: LocalServers) -> ChatClient:
    """A client for one picked model; a local file that cannot be served gives a client that explains why."""
    if choice.path is not None:
        spec = ServerSpec(Path(choice.path), choice.model, choice.context_tokens or 8_192, settings.local_threads)
        try:
            return servers.client(spec)
        except ConfigError as exc:
            return UnconfiguredClient(reason=str(exc))
    if choice.base_url is not None and not choice.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"OPENAI_BASE_URL must start with http:// or https://, not {choice.base_url!r}.")
    return OpenAIClient(
        model=choice.model,
        api_key=settings.api_key if choice.uses_key else None,
        base_url=choice.base_url,
        timeout_s=settings.timeout_s,
        max_retries=settings.max_retries,
        context_tokens=choice.context_tokens,
    )


def client_from_settings(settings: Settings, servers: LocalServers | None = None) -> ChatClient:
    """The default model: OPENAI_MODEL at OpenAI or OPENAI_BASE_URL when configured, else the bundled one."""
    configured = configured_choice(settings)
    if configured is not None:
        return client_for(configured, settings, servers or LocalServers())
    bundled = bundled_choice(settings)
    if isinstance(bundled, str):
        return UnconfiguredClient(reason=bundled)
    return client_for(bundled, settings, servers or LocalServers(max_running=1))


__all__ = [
    "ChatClient",
    "Completion",
    "LocalServers",
    "ModelChoice",
    "OpenAIClient",
    "ReplyStream",
    "UnconfiguredClient",
    "client_for",
    "client_from_settings",
    "complete",
    "default_key",
    "local_client",
]
