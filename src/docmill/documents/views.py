"""What the service hands to the API and the CLI besides ``Document`` rows: a page of a
listing, and a document's progress. Plain dataclasses, JSON-ready through ``to_dict``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docmill.documents.models import Document
from docmill.documents.status import Status


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest documents first."""

    items: list[Document]
    total: int
    offset: int
    limit: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [document.to_dict() for document in self.items],
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class Progress:
    """How far processing is: model calls done of the calls planned, and the money spent."""

    document_id: int
    status: str
    done: int
    total: int
    cost_usd: float
    estimated_cost_usd: float | None
    eta_s: float | None

    @property
    def fraction(self) -> float:
        if self.status == Status.COMPLETED:
            return 1.0
        return self.done / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "fraction": self.fraction,
            "cost_usd": self.cost_usd,
            "estimated_cost_usd": self.estimated_cost_usd,
            "eta_s": self.eta_s,
        }
