"""The model requests of one document, built the same way for the estimate and the run.

``Calls`` knows the document's profile, options, language and model, and builds the
``LLMRequest`` of a map over a chunk or of a reduce over partial answers. The estimate
counts the very requests the processing will send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docmill.documents.options import DocumentOptions
from docmill.documents.profiles import Profile, Source, profile_for
from docmill.llm.models import max_output_tokens
from docmill.llm.types import LLMRequest


@dataclass(frozen=True)
class Calls:
    profile: Profile
    options: DocumentOptions
    source: Source
    model: str

    @classmethod
    def for_document(
        cls, *, name: str, options: dict[str, Any], analysis: dict[str, Any] | None, default_model: str
    ) -> Calls:
        parsed = DocumentOptions.parse(options)
        analysis = analysis or {}
        language = (analysis.get("language") or {}).get("code")
        source = Source(name=name, title=analysis.get("title"), language=language)
        return cls(profile_for(parsed), parsed, source, parsed.model or default_model)

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
        return self._request(prompt, final=total == 1, step="map")

    def reduce(self, partials: list[str], *, final: bool) -> LLMRequest:
        """The call combining earlier answers (raw answer texts, in document order)."""
        shown = [self.profile.partial_view(text) for text in partials]
        prompt = self.profile.reduce_prompt(shown, final=final, source=self.source, options=self.options)
        return self._request(prompt, final=final, step="reduce")

    def _request(self, prompt: str, *, final: bool, step: str) -> LLMRequest:
        return LLMRequest(
            model=self.model,
            system=self.system,
            prompt=prompt,
            max_tokens=self.max_tokens(final=final),
            json_output=self.profile.json_output,
            purpose=f"{self.profile.name}:{'final' if final else step}",
        )
