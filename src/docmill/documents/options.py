"""What a user asks for when uploading a document, validated once.

``DocumentOptions.parse`` accepts a mapping (from JSON, a form, the CLI) and rejects
options that cannot work with ``InvalidOptions``; ``key()`` is a digest of the options
that matter for the result, so an upload of the same bytes with the same options is
recognised as a duplicate.

The model counts by the one id it names: no model is the configured default, and an
alias is its dated id (``claude-sonnet-4-5`` is ``claude-sonnet-4-5-20250929``), so
"no model", the default model, an alias and its dated id are the same options. The
options themselves are stored as given (``to_dict``): ``model`` is what the user wrote,
stripped, or null for the default, which processing resolves when it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from docmill.documents.errors import InvalidOptions
from docmill.llm.models import resolve_model
from docmill.queue import mask_url

PROFILES = ("summary", "extract", "custom")
MAX_PROMPT_CHARS = 20_000
MAX_SCHEMA_CHARS = 50_000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_yes_no(text: str) -> bool | None:
    """``true``/``yes``/``on``/``1`` and their opposites (and empty: no), in any case; None
    for anything else, which each caller refuses with its own error."""
    value = text.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


@dataclass(frozen=True)
class DocumentOptions:
    """How one document is processed and where its result is announced.

    ``profile``: ``summary`` (default), ``extract`` (needs ``schema``, a JSON Schema object)
    or ``custom`` (needs ``prompt``). ``model``: ``None`` means the configured default.
    ``auto_approve``: process without waiting for approval, whatever the estimate.
    ``batch``: send the model calls through Claude's Message Batches API (half price, answered
    within hours); ``None`` follows the profile's default (``profiles.sends_by_batch``).
    ``callback_url``: an http(s) URL that receives a signed POST when the document ends.
    """

    profile: str = "summary"
    model: str | None = None
    callback_url: str | None = None
    auto_approve: bool = False
    schema: dict[str, Any] | None = None
    prompt: str | None = None
    batch: bool | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any] | DocumentOptions | None) -> DocumentOptions:
        """Validate ``data``; raise ``InvalidOptions`` naming the first option that cannot work."""
        if data is None:
            return cls()
        if isinstance(data, DocumentOptions):
            data = data.to_dict()
        known = {"profile", "model", "callback_url", "auto_approve", "schema", "prompt", "batch"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidOptions(
                f"Unknown option {unknown[0]!r}; use profile, model, callback_url, auto_approve, "
                "schema, prompt or batch."
            )
        profile = str(data.get("profile") or "summary").strip().lower()
        if profile not in PROFILES:
            raise InvalidOptions(f"Profile {profile!r} does not exist; use one of: {', '.join(PROFILES)}.")
        model = _optional_text(data.get("model"), "model")
        callback_url = _optional_text(data.get("callback_url"), "callback_url")
        if callback_url is not None:
            try:
                parts = urlsplit(callback_url)
                usable = bool(parts.hostname) and (parts.port is None or parts.port > 0)
            except ValueError:  # an unclosed IPv6 bracket; a port that is no number, or past 65535
                usable = False
            if not usable or parts.scheme not in ("http", "https"):
                raise InvalidOptions(
                    f"callback_url {mask_url(callback_url)!r} is not an http(s) URL; "
                    "give one like https://host/hook."
                )
        schema = _schema(data.get("schema"))
        prompt = _optional_text(data.get("prompt"), "prompt")
        if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidOptions(f"The prompt is longer than {MAX_PROMPT_CHARS} characters; shorten it.")
        if profile == "extract" and schema is None:
            raise InvalidOptions("The extract profile needs a schema: a JSON Schema object of the fields.")
        if profile == "custom" and prompt is None:
            raise InvalidOptions("The custom profile needs a prompt saying what to do with the document.")
        return cls(
            profile=profile,
            model=model,
            callback_url=callback_url,
            auto_approve=_flag(data.get("auto_approve", False)),
            schema=schema if profile == "extract" else None,
            prompt=prompt if profile == "custom" else None,
            batch=None if data.get("batch") in (None, "") else _flag(data["batch"], "batch"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self, *, default_model: str) -> str:
        """A digest of everything that shapes the result (not where it is announced), with
        the model as one id: ``default_model`` when none is given, an alias as its dated id."""
        model = resolve_model(self.model or default_model)
        shaping = {"profile": self.profile, "model": model, "schema": self.schema, "prompt": self.prompt}
        canonical = json.dumps(shaping, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def shown_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored options as the CLI, the API and the dashboard show them: the callback URL's
    secrets (``user:password@``, ``?token=``) masked. The webhook alone uses the stored URL."""
    shown = dict(options or {})
    if shown.get("callback_url"):
        shown["callback_url"] = mask_url(str(shown["callback_url"]))
    return shown


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOptions(f"Option {name} must be text, not {type(value).__name__}.")
    return value.strip() or None


def _flag(value: Any, name: str = "auto_approve") -> bool:
    if isinstance(value, bool):
        return value
    parsed = parse_yes_no(value) if isinstance(value, str) else None
    if parsed is not None:
        return parsed
    raise InvalidOptions(f"{name} must be true or false, not {value!r}.")


def _schema(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidOptions(
                f"The schema is not valid JSON ({exc}); give a JSON Schema object."
            ) from None
    if not isinstance(value, dict):
        raise InvalidOptions("The schema must be a JSON object (a JSON Schema with properties).")
    if len(json.dumps(value)) > MAX_SCHEMA_CHARS:
        raise InvalidOptions(f"The schema is longer than {MAX_SCHEMA_CHARS} characters; shorten it.")
    properties = value.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise InvalidOptions("The schema needs a non-empty 'properties' object naming the fields to extract.")
    return value
