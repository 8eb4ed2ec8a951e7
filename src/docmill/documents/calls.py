"""The model requests of one document, built the same way for the estimate and the run.

``Calls`` knows the document's profile, options, language and model, and builds the
``LLMRequest`` of a map over a chunk or of a reduce over partial answers. The estimate
counts the very requests the processing will send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.documents.options import DocumentOptions
from docmill.documents.profiles import Profile, Source, profile_for
from docmill.llm.models import max_output_tokens, resolve_model
from docmill.llm.types import LLMRequest


@dataclass(frozen=True)
class Calls:
    profile: Profile
    options: DocumentOptions
    source: Source
    model: str
    map_input_tokens: Mapping[int, int] = field(default_factory=dict)
    """The API's count of each map's input (chunk index -> tokens), as the estimate found it."""

    @classmethod
    def for_document(
        cls,
        *,
        name: str,
        options: dict[str, Any],
        analysis: dict[str, Any] | None,
        default_model: str,
        estimate: dict[str, Any] | None = None,
    ) -> Calls:
        """The calls of a document; with its ``estimate``, the maps carry the input counts the
        API gave for them (only those counted for this very model)."""
        parsed = DocumentOptions.parse(options)
        analysis = analysis or {}
        language = (analysis.get("language") or {}).get("code")
        source = Source(name=name, title=analysis.get("title"), language=language)
        model = parsed.model or default_model
        return cls(profile_for(parsed), parsed, source, model, _counted_maps(estimate, model))

    @property
    def system(self) -> str:
        return self.profile.system(self.options, self.source)

    def max_tokens(self, *, final: bool) -> int:
        wanted = self.profile.final_max_tokens if final else self.profile.map_max_tokens
        return min(wanted, max_output_tokens(self.model))

    def map(self, chunk: dict[str, Any], total: int) -> LLMRequest:
        """The call over one chunk (``chunk`` as analysis stores it: index, text, heading_path)."""
        prompt = self.profile.map_prompt(
            chunk["text"],
            index=int(chunk["index"]),
            total=total,
            heading=list(chunk.get("heading_path") or []),
            source=self.source,
            options=self.options,
        )
        index = int(chunk["index"])
        return self._request(
            prompt,
            final=total == 1,
            step="map",
            input_tokens=self.map_input_tokens.get(index),
            cache_prefix_chars=shared_prefix_chars(prompt, chunk["text"]),
        )

    def reduce(self, partials: list[str], *, final: bool) -> LLMRequest:
        """The call combining earlier answers (raw answer texts, in document order)."""
        shown = [self.profile.partial_view(text) for text in partials]
        prompt = self.profile.reduce_prompt(shown, final=final, source=self.source, options=self.options)
        # The reduces of a level share their instructions (a long custom prompt or schema).
        shared = shared_prefix_chars(prompt, shown[0]) if shown else 0
        return self._request(prompt, final=final, step="reduce", cache_prefix_chars=shared)

    def _request(
        self,
        prompt: str,
        *,
        final: bool,
        step: str,
        input_tokens: int | None = None,
        cache_prefix_chars: int = 0,
    ) -> LLMRequest:
        return LLMRequest(
            model=self.model,
            system=self.system,
            prompt=prompt,
            max_tokens=self.max_tokens(final=final),
            json_output=self.profile.json_output,
            purpose=f"{self.profile.name}:{'final' if final else step}",
            input_tokens=input_tokens,
            cache_prefix_chars=cache_prefix_chars,
        )


def _counted_maps(estimate: dict[str, Any] | None, model: str) -> dict[int, int]:
    if not estimate or estimate.get("token_source") != "provider":
        return {}
    counts = estimate.get("map_input_tokens")
    if not isinstance(counts, list) or resolve_model(str(estimate.get("model", ""))) != resolve_model(model):
        return {}
    return {index: int(n) for index, n in enumerate(counts) if isinstance(n, int) and n > 0}


def shared_prefix_chars(prompt: str, own_text: str) -> int:
    """How much of a map's ``prompt`` its document's other maps share: what comes before the
    chunk's ``own_text``, up to the last blank line there (where the chunk's part begins)."""
    start = prompt.find(own_text) if own_text else -1
    if start <= 0:
        return 0
    return max(0, prompt.rfind("\n\n", 0, start))
