"""What the stages of the pipeline share: the model and its limits and prices, failing a
document, approval, and announcing the end of a document to its callback URL."""

from __future__ import annotations

from sqlalchemy.orm import Session

from docmill.documents.context import DocumentContext
from docmill.documents.dispatch import dispatch_webhook
from docmill.documents.models import Document
from docmill.documents.settings import DocumentSettings
from docmill.documents.status import Status, can_move, change_status
from docmill.llm.models import DEFAULT_MODEL, resolve_model
from docmill.llm.pricing import PriceTable
from docmill.llm.ratelimit import RateLimits
from docmill.llm.types import Provider


def default_model(settings: DocumentSettings) -> str:
    return settings.llm.default_model if settings.llm is not None else DEFAULT_MODEL


def served_model(settings: DocumentSettings, provider: Provider, requested: str) -> str:
    """The model calls for ``requested`` go to: an OpenAI-compatible server's configured
    model (``OPENAI_MODEL``) replaces the document's, as that provider does."""
    if provider.name == "openai" and settings.llm is not None and settings.llm.openai_model:
        return settings.llm.openai_model
    return requested


def price_table(settings: DocumentSettings) -> PriceTable:
    return settings.llm.prices if settings.llm is not None else PriceTable.default()


def rate_limits(settings: DocumentSettings, provider: Provider, model: str) -> RateLimits | None:
    """The per-minute limits calls to ``model`` are held to; None when nothing limits them."""
    if provider.is_offline or settings.llm is None:
        return None
    resolved = resolve_model(model)
    for name, limits in settings.llm.limits.items():
        if resolve_model(name) == resolved:
            return limits
    return settings.llm.default_limits if provider.name == "anthropic" else None


def approval(
    cost_usd: float | None,
    *,
    price_known: bool,
    auto_approve: bool,
    max_usd: float,
    price_note: str | None = None,
) -> tuple[bool, str]:
    """Whether an estimate is approved without a person, and the sentence recorded for it.

    A cost that cannot be estimated (no price for the model) is never within a budget:
    only a person, or the document's own ``auto_approve`` option, approves it.
    """
    cost = cost_usd if price_known else None
    if auto_approve:
        shown = "the cost is unknown" if cost is None else f"estimated ${cost:.4f}"
        return True, f"auto-approved by the auto_approve option ({shown})"
    if cost is None:
        reason = price_note or "the model has no known price, so the cost cannot be estimated"
        return False, f"awaiting approval: {reason}"
    if cost <= max_usd:
        return True, f"auto-approved: estimated ${cost:.4f} is within the ${max_usd:.2f} budget"
    return False, (
        f"awaiting approval: estimated ${cost:.4f} is over the auto-approve budget of "
        f"${max_usd:.2f}; approve it to process it"
    )


async def fail_document(ctx: DocumentContext, document_id: int, reason: str) -> Document | None:
    """Fail the document with ``reason`` unless it already ended (cancelled, deleted)."""

    def move(session: Session) -> Document | None:
        document = session.get(Document, document_id)
        if document is None or not can_move(document.status, Status.FAILED):
            return None
        change_status(session, document, Status.FAILED, f"failed: {reason}", values={"error_reason": reason})
        return document

    document = await ctx.db.run(move)
    if document is not None:
        await announce(ctx, document)
    return document


async def announce(ctx: DocumentContext, document: Document) -> None:
    """Queue the webhook of a document that reached the end, if it has a callback URL."""
    if document.options.get("callback_url"):
        await dispatch_webhook(ctx.client, ctx.settings, document.id, document.status)
