"""Prices per model and the running cost of a conversation's calls (a shipped table, editable)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from .errors import InvalidInput


@dataclass(frozen=True)
class Price:
    """US dollars per million input and output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1_000_000


FREE = Price(0.0, 0.0)


def shipped_prices() -> dict[str, Price]:
    """The price table that ships with Memory Lab."""
    raw = json.loads(resources.files("memstore").joinpath("data", "prices.json").read_text("utf-8"))
    return {name: Price(float(p["input"]), float(p["output"])) for name, p in raw.items() if not name.startswith("_")}


def price_for(model: str, table: Mapping[str, Price]) -> Price:
    """The longest table entry that the model name starts with (gpt-4o-mini-2024… → gpt-4o-mini), else free."""
    matches = [name for name in table if model == name or model.startswith(name + "-")]
    return table[max(matches, key=len)] if matches else FREE


def prices_from_rows(rows: list[Mapping[str, object]]) -> dict[str, Price]:
    """An edited price table (model, input, output) checked: names given, prices numbers at or above 0."""
    table = {}
    for row in rows:
        name = str(row.get("model") or "").strip()
        if not name:
            continue
        try:
            price = Price(float(row.get("input") or 0), float(row.get("output") or 0))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput(f"The prices of {name!r} must be numbers.") from None
        if not all(math.isfinite(v) and v >= 0 for v in (price.input_per_million, price.output_per_million)):
            raise InvalidInput(f"The prices of {name!r} must be 0 or more.")
        table[name] = price
    return table
