"""Text embeddings for retrieval memory: wordllama offline by default, an OpenAI-compatible endpoint when set."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ConfigError, LLMError, redact

if TYPE_CHECKING:
    import numpy as np

WORDLLAMA_DIMS = 256
MAX_EMBED_BATCH = 256  # texts per request to a remote endpoint


class Embedder(Protocol):
    """Turns texts into unit-length float32 rows; `name` identifies the vector space stored with them."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so a dot product is the cosine similarity."""
    import numpy as np  # loaded on first use: only retrieval memory needs it

    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


VECTOR_DTYPE = "int8"  # how vectors are stored: one byte per dimension
QUANT_SCALE = 127.0  # a unit vector's components (within -1..1) times this, rounded


def to_bytes(vector: np.ndarray) -> bytes:
    """A unit vector as stored: int8, a quarter of float32's bytes and plenty for ranking by cosine.

    Reading back needs no slow float16 conversion: a recall over 2,000 turns converts in 0.1 ms.
    """
    import numpy as np  # loaded on first use: only retrieval memory needs it

    scaled = np.clip(np.rint(np.asarray(vector, dtype=np.float32) * QUANT_SCALE), -QUANT_SCALE, QUANT_SCALE)
    return scaled.astype(VECTOR_DTYPE).tobytes()


def dequantize(stored: np.ndarray) -> np.ndarray:
    """Stored int8 rows back as float32 vectors (close to unit length)."""
    import numpy as np  # loaded on first use: only retrieval memory needs it

    return stored.astype(np.float32) / QUANT_SCALE


def from_bytes(blobs: Sequence[bytes]) -> np.ndarray:
    """Stored vectors back as one float32 matrix."""
    import numpy as np  # loaded on first use: only retrieval memory needs it

    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return dequantize(np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE).reshape(len(blobs), -1))


class WordLlamaEmbedder:
    """wordllama's 256-dimension static embeddings, loaded from the wheel's own files with downloads off."""

    name = f"wordllama:l2_supercat_{WORDLLAMA_DIMS}"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import wordllama
                    from wordllama import WordLlama
                except ImportError:
                    raise ConfigError("Retrieval memory needs the wordllama package; run ./install.sh.") from None
                folder = Path(wordllama.__file__).resolve().parent
                try:
                    # 0.4.0 looks for its tokenizer in the wrong folder and would then download it:
                    # pointing the cache at the package folder with downloads off loads the bundled files.
                    self._model = WordLlama.load(dim=WORDLLAMA_DIMS, cache_dir=folder, disable_download=True)
                except (OSError, ValueError, FileNotFoundError) as exc:
                    raise ConfigError(f"wordllama's bundled model could not be loaded: {exc}") from None
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np  # loaded on first use: only retrieval memory needs it

        if not texts:
            return np.zeros((0, WORDLLAMA_DIMS), dtype=np.float32)
        return unit_rows(self._load().embed(list(texts), norm=True))


class OpenAIEmbedder:
    """An OpenAI-compatible /v1/embeddings endpoint (OpenAI, Ollama, vLLM, LM Studio, llama.cpp)."""

    def __init__(self, model: str, *, api_key: str | None, base_url: str | None, timeout_s: float = 60.0):
        from openai import OpenAI

        self.model = model
        host = base_url or "https://api.openai.com/v1"
        self.name = f"openai:{model}@{host}"
        self._client = OpenAI(api_key=api_key or "not-needed", base_url=base_url, timeout=timeout_s, max_retries=1)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np  # loaded on first use: only retrieval memory needs it
        import openai

        rows: list[list[float]] = []
        try:
            for start in range(0, len(texts), MAX_EMBED_BATCH):
                batch = list(texts[start : start + MAX_EMBED_BATCH])
                response = self._client.embeddings.create(model=self.model, input=batch)
                ordered = sorted(response.data, key=lambda item: item.index)
                if len(ordered) != len(batch):
                    raise LLMError(
                        "bad_response",
                        f"The embeddings endpoint returned {len(ordered)} vectors for {len(batch)} texts.",
                    )
                rows.extend(item.embedding for item in ordered)
        except openai.APIConnectionError:
            raise LLMError("connection", "The embeddings endpoint could not be reached.") from None
        except openai.APIStatusError as exc:
            raise LLMError("http", f"The embeddings endpoint answered HTTP {exc.status_code}.") from None
        except openai.OpenAIError as exc:
            raise LLMError(
                "bad_response", redact(f"The embeddings request failed: {exc}", self._client.api_key)
            ) from None
        return unit_rows(np.array(rows, dtype=np.float32)) if rows else np.zeros((0, 0), dtype=np.float32)


def embedder_from_settings(
    model: str | None, *, api_key: str | None, base_url: str | None, timeout_s: float = 60.0
) -> Embedder:
    """The remote endpoint when an embeddings model is configured, else wordllama offline."""
    if model:
        return OpenAIEmbedder(model, api_key=api_key, base_url=base_url, timeout_s=timeout_s)
    return WordLlamaEmbedder()
