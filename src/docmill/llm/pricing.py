"""Prices of Claude models in USD per million tokens, and the cost of one call.

Cache writes are priced at the 5-minute TTL rate (1.25 times input), cache reads at
0.1 times input, as Anthropic lists them; Batch API calls cost ``batch_discount`` times the
standard price. The table is overridable from configuration (``[llm.prices]`` in
``docmill.toml`` or ``DOCMILL_LLM_PRICES``, see ``docmill.llm.settings``).

A Claude model of a known line that is not in the table (a newer Opus, Sonnet or
Haiku) is priced like the newest priced model of its line and marked
``provisional``; anything else unknown is a ``KeyError`` that says how to add a price.
An unknown price is never taken as free: the estimate then has no cost and the
document waits for approval (``docmill.documents.estimate``).

The table remembers which prices came from configuration (``configured_price``): a
server that is not Anthropic's (an OpenAI-compatible endpoint) is priced only from
those, since Anthropic's list prices say nothing of it. A local server is free when
configuration says so, with a price of 0 for its model.
Prices change: check https://www.anthropic.com/pricing and override when they do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from docmill.llm.models import model_info, model_line, resolve_model
from docmill.llm.types import Usage

PER_MTOK = 1_000_000
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
DEFAULT_BATCH_DISCOUNT = 0.5
PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_write_per_mtok", "cache_read_per_mtok")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens of each kind."""

    input_per_mtok: float
    output_per_mtok: float
    cache_write_per_mtok: float
    cache_read_per_mtok: float
    provisional: bool = False
    """True when borrowed from another model of the line because this one has no listed price."""

    @classmethod
    def standard(cls, input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
        """A price with the usual cache multipliers (write 1.25 times, read 0.1 times input)."""
        return cls(
            input_per_mtok,
            output_per_mtok,
            round(input_per_mtok * CACHE_WRITE_FACTOR, 6),
            round(input_per_mtok * CACHE_READ_FACTOR, 6),
        )


_OPUS_4_5 = ModelPrice.standard(5.0, 25.0)
_OPUS_4 = ModelPrice.standard(15.0, 75.0)
_SONNET = ModelPrice.standard(3.0, 15.0)
_HAIKU_4_5 = ModelPrice.standard(1.0, 5.0)
_HAIKU_3_5 = ModelPrice.standard(0.8, 4.0)
_HAIKU_3 = ModelPrice(0.25, 1.25, 0.30, 0.03)
_FREE = ModelPrice(0.0, 0.0, 0.0, 0.0)

# Dated ids (aliases resolve to them). Retired models stay so old results keep a cost.
_DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        "claude-opus-4-6": _OPUS_4_5,
        "claude-opus-4-5-20251101": _OPUS_4_5,
        "claude-opus-4-1-20250805": _OPUS_4,
        "claude-opus-4-20250514": _OPUS_4,
        "claude-3-opus-20240229": _OPUS_4,
        "claude-sonnet-4-6": _SONNET,
        "claude-sonnet-4-5-20250929": _SONNET,
        "claude-sonnet-4-20250514": _SONNET,
        "claude-3-7-sonnet-20250219": _SONNET,
        "claude-3-5-sonnet-20241022": _SONNET,
        "claude-3-5-sonnet-20240620": _SONNET,
        "claude-haiku-4-5-20251001": _HAIKU_4_5,
        "claude-3-5-haiku-20241022": _HAIKU_3_5,
        "claude-3-haiku-20240307": _HAIKU_3,
        "extractive": _FREE,
    }
)
# The model whose price stands in for an unlisted model of the same line.
_LINE_REFERENCE: Mapping[str, str] = MappingProxyType(
    {"opus": "claude-opus-4-6", "sonnet": "claude-sonnet-4-6", "haiku": "claude-haiku-4-5-20251001"}
)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by dated model id (aliases resolve), plus the Batch API multiplier."""

    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: _DEFAULT_PRICES)
    batch_discount: float = DEFAULT_BATCH_DISCOUNT
    """Fraction of the standard price charged for Batch API calls (0.5 = half price)."""
    configured: frozenset[str] = frozenset()
    """Keys of ``prices`` set or changed by configuration (``with_overrides``)."""

    @classmethod
    def default(cls) -> PriceTable:
        """Anthropic's list prices for current (and recently retired) models, and ``extractive`` at 0."""
        return cls()

    def with_overrides(
        self, overrides: Mapping[str, Mapping[str, float]], *, batch_discount: float | None = None
    ) -> PriceTable:
        """A copy with prices replaced or added, e.g. ``{"claude-opus-4-7": {"input_per_mtok": 5, ...}}``.

        A known model may override some fields only; a new one needs ``input_per_mtok`` and
        ``output_per_mtok`` (cache prices then default to 1.25 times and 0.1 times input).
        """
        prices = dict(self.prices)
        configured = set(self.configured)
        for name, fields in overrides.items():
            unknown = sorted(set(fields) - set(PRICE_FIELDS))
            if unknown:
                raise ValueError(
                    f"price for {name!r}: unknown field(s) {', '.join(unknown)}; "
                    f"use {', '.join(PRICE_FIELDS)}"
                )
            values = {key: float(value) for key, value in fields.items()}
            if any(value < 0 for value in values.values()):
                raise ValueError(f"price for {name!r}: prices cannot be negative")
            model = name if name in prices else resolve_model(name)
            base = prices.get(model)
            if base is None:
                if not {"input_per_mtok", "output_per_mtok"} <= values.keys():
                    raise ValueError(
                        f"price for {name!r}: a model not in the table needs input_per_mtok and "
                        "output_per_mtok"
                    )
                base = ModelPrice.standard(values["input_per_mtok"], values["output_per_mtok"])
            prices[model] = dataclasses.replace(base, provisional=False, **values)
            configured.add(model)
        discount = self.batch_discount if batch_discount is None else float(batch_discount)
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"batch_discount must be between 0 and 1, not {discount}")
        return PriceTable(MappingProxyType(prices), discount, frozenset(configured))

    def _key(self, model: str) -> str | None:
        """The key of ``prices`` that ``model`` (alias, dated id, or other name) is listed under."""
        name = model.strip()
        for candidate in (name, resolve_model(name)):
            if candidate in self.prices:
                return candidate
        info = model_info(name)
        if info is not None and info.id in self.prices:
            return info.id
        return None

    def _lookup(self, model: str) -> ModelPrice | None:
        key = self._key(model)
        return None if key is None else self.prices[key]

    def configured_price(self, model: str) -> ModelPrice | None:
        """The price configuration gives ``model`` (an alias finds its dated id's), else None.

        List prices do not count: this is how a server that is not Anthropic's is priced.
        """
        key = self._key(model)
        return self.prices[key] if key is not None and key in self.configured else None

    def price_for(self, model: str) -> ModelPrice:
        """The price of an alias or dated id; see the module docstring for unlisted models.

        Raises ``KeyError`` with a message that says how to add the price.
        """
        price = self._lookup(model)
        if price is not None:
            return price
        line = model_line(model) if model.strip().startswith("claude-") else None
        reference = _LINE_REFERENCE.get(line or "")
        if reference is not None and (borrowed := self._lookup(reference)) is not None:
            return dataclasses.replace(borrowed, provisional=True)
        raise KeyError(
            f'no price is known for model {model!r}; add one under [llm.prices."{model}"] in '
            "docmill.toml or in DOCMILL_LLM_PRICES (USD per million tokens: "
            f"{', '.join(PRICE_FIELDS)})"
        )

    def has_price(self, model: str) -> bool:
        """True when ``price_for`` answers (listed or provisional)."""
        try:
            self.price_for(model)
        except KeyError:
            return False
        return True

    def cost_usd(self, model: str, usage: Usage, *, batch: bool = False) -> float:
        """USD for one call: each kind of token at its price, times ``batch_discount`` for batches."""
        price = self.price_for(model)
        cost = (
            usage.input_tokens * price.input_per_mtok
            + usage.output_tokens * price.output_per_mtok
            + usage.cache_creation_input_tokens * price.cache_write_per_mtok
            + usage.cache_read_input_tokens * price.cache_read_per_mtok
        ) / PER_MTOK
        return cost * self.batch_discount if batch else cost
