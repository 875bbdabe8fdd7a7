"""The chat client over the openai package: OpenAI or any OpenAI-compatible server, streamed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import openai

from ..errors import LLMError, one_line, redact
from ..records import ChatMessage, Usage
from ..tokens import TokenCounter, counter_for_model
from .base import StreamState

# Context windows of OpenAI models by name prefix, longest prefix first; others use the default.
CONTEXT_TOKENS = (
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("o4", 200_000),
    ("o3", 200_000),
    ("o1", 200_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-4", 8_192),
)
DEFAULT_CONTEXT_TOKENS = 8_192
# Parameters of the Chat Completions API itself; any other (llama.cpp's repeat_penalty) goes in the body as is.
CHAT_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "n",
        "response_format",
        "user",
    }
)


def context_tokens_for(model: str) -> int:
    for prefix, size in CONTEXT_TOKENS:
        if model.startswith(prefix):
            return size
    return DEFAULT_CONTEXT_TOKENS


def translate_error(exc: Exception, *, model: str, host: str, secret: str | None = None) -> LLMError:
    """One domain error, in words a person understands, for every failure the openai package raises; the key
    is never part of it, even when the server quoted it back."""
    error = _translate(exc, model=model, host=host, secret=secret)
    if secret and secret in error.message:
        return LLMError(error.kind, redact(error.message, secret), retryable=error.retryable)
    return error


class _NoRedirectClient(openai.DefaultHttpxClient):
    """The SDK's HTTP client without redirects: a server may not send the conversation or key to another address."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(follow_redirects=False, **kwargs)

    def __del__(self) -> None:  # closed when dropped, like the SDK's own client
        if not self.is_closed:
            with contextlib.suppress(Exception):  # at interpreter exit the transport may already be gone
                self.close()


def _translate(exc: Exception, *, model: str, host: str, secret: str | None) -> LLMError:
    if isinstance(exc, openai.AuthenticationError):
        return LLMError(
            "auth", f"The server at {host} refused the API key (401). Check OPENAI_API_KEY.", retryable=False
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return LLMError("forbidden", f"The key is not allowed to use {model} at {host} (403).", retryable=False)
    if isinstance(exc, openai.NotFoundError):
        return LLMError(
            "unknown_model",
            f"The server at {host} does not know the model {model!r} (404). Check OPENAI_MODEL.",
            retryable=False,
        )
    if isinstance(exc, openai.RateLimitError):
        return LLMError(
            "rate_limit",
            f"The server at {host} is rate-limiting requests or the quota is used up (429). Wait a moment and retry.",
        )
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", f"The model at {host} took too long to answer. Retry, or raise OPENAI_TIMEOUT_S.")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(
            "unreachable", f"Cannot reach the model server at {host}. Is it running? Check OPENAI_BASE_URL."
        )
    if isinstance(exc, openai.BadRequestError):
        detail = _detail(exc, secret)
        return LLMError("bad_request", f"The server at {host} refused the request (400): {detail}", retryable=False)
    if isinstance(exc, openai.APIStatusError) and 300 <= exc.status_code < 400:
        where = one_line(redact(exc.response.headers.get("location", ""), secret)) or "another address"
        return LLMError(
            "redirect",
            f"The server at {host} redirects to {where} ({exc.status_code}); Memory Lab does not follow it, so "
            "your conversation and key stay with the address you set. If you trust it, set OPENAI_BASE_URL to it.",
            retryable=False,
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMError("server_error", f"The model server at {host} failed ({exc.status_code}). Retry shortly.")
        return LLMError("http_error", f"The server at {host} answered {exc.status_code}: {_detail(exc, secret)}")
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMError("bad_response", f"The server at {host} sent a reply that is not valid chat data.")
    if isinstance(exc, openai.OpenAIError):
        return LLMError("error", f"The model call failed: {redact(str(exc), secret)}")
    return LLMError("bad_response", f"The server at {host} sent data that could not be read ({type(exc).__name__}).")


def _detail(exc: Exception, secret: str | None) -> str:
    """The server's own error message, key removed, then shortened."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if message:
            return redact(str(message), secret)[:300]
    return redact(str(getattr(exc, "message", exc)), secret)[:300]


class OpenAIStream(StreamState):
    """One streamed chat completion; keeps what arrived if the stream breaks."""

    def __init__(self, client: OpenAIClient, messages: Sequence[ChatMessage], params: Mapping[str, Any]):
        super().__init__(messages, params)
        self._client = client

    def __iter__(self) -> Iterator[str]:
        client = self._client
        finish_reason: str | None = None
        usage = Usage()
        try:
            known = {k: v for k, v in self._params.items() if k in CHAT_PARAMS}
            extra = {k: v for k, v in self._params.items() if k not in CHAT_PARAMS}
            self._raw = client.sdk.chat.completions.create(  # type: ignore[call-overload]
                model=client.model,
                messages=self._messages,
                stream=True,
                stream_options={"include_usage": True},
                **known,
                **({"extra_body": extra} if extra else {}),
            )
            for chunk in self._raw:
                if getattr(chunk, "usage", None) is not None:
                    u = chunk.usage
                    usage = Usage(u.prompt_tokens, u.completion_tokens, u.total_tokens)
                for choice in chunk.choices or ():
                    delta = choice.delta.content if choice.delta is not None else None
                    if delta:
                        yield self._received(delta)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except LLMError:
            raise
        except Exception as exc:  # every failure of the SDK or the wire becomes one domain error
            raise translate_error(exc, model=client.model, host=client.host, secret=client.sdk.api_key) from exc
        if finish_reason is None:
            raise LLMError(
                "truncated",
                f"The connection to {client.host} ended before the reply was finished; what arrived is kept.",
            )
        if self._held:  # the stream ended on half an emoji
            self._pieces.append("\ufffd")
            self._held = ""
        self._finish(finish_reason, usage)


class OpenAIClient:
    """Chat Completions over the openai package; the key stays inside the SDK object."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float = 60.0,
        max_retries: int = 1,
        context_tokens: int | None = None,
        provider: str | None = None,
        host: str | None = None,
        default_params: Mapping[str, Any] | None = None,
        counter: TokenCounter | None = None,
        keep_alive: object | None = None,
    ):
        self.model = model
        self.timeout_s = timeout_s
        self.provider = provider or ("openai" if base_url is None else "openai-compatible")
        self.host = host or (urlparse(base_url).netloc if base_url else "api.openai.com")
        self.base_url = base_url
        self.context_tokens = context_tokens or context_tokens_for(model)
        self.default_params: dict[str, Any] = dict(default_params or {})
        # Local servers accept any key; the SDK refuses to start without one.
        http = _NoRedirectClient(timeout=timeout_s)
        self.sdk = openai.OpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=http,
        )
        self._counter: TokenCounter | None = counter
        self.keep_alive = keep_alive  # what the client needs running while it lives (a local model server)

    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = counter_for_model(self.model)
        return self._counter

    def stream_chat(self, messages: Sequence[ChatMessage], *, params: Mapping[str, Any]) -> OpenAIStream:
        return OpenAIStream(self, messages, params)
