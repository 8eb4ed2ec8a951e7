"""The offline token estimate (kept equal to the documents side's) and JSON extraction."""

from __future__ import annotations

import pytest

from docmill.documents.analysis.tokens import EstimatingTokenCounter
from docmill.llm import estimate_request_tokens, estimate_tokens
from docmill.llm.jsonout import extract_json_object, with_json_instruction

SAMPLES = [
    "",
    "a",
    "The quarterly report on harbour logistics.",
    "Квартальный отчёт о портовой логистике.",  # noqa: RUF001
    "港湾物流に関する四半期報告書。",
    "Mixed: Отчёт 報告 report " * 40,
]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_estimate_equals_the_documents_sides_counter(text: str) -> None:
    assert estimate_tokens(text) == EstimatingTokenCounter().count(text)


def test_ratios_by_script() -> None:
    assert estimate_tokens("x" * 400) == 100
    assert estimate_tokens("д" * 250) == 100
    assert estimate_tokens("語" * 100) == 100


def test_a_request_adds_the_message_overhead_as_the_emulator_counts_it() -> None:
    # The emulator: ceil(14 / 4) + 3 + ceil(31 / 4) = 4 + 3 + 8.
    assert estimate_request_tokens("You summarise.", "Summarise the quarterly report.") == 15


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure! Here it is:\n```json\n{"a": [1, 2,],}\n```\nAnything else?', {"a": [1, 2]}),
        ('{"title": "T", "summary": "cut off mid-sen', {"title": "T", "summary": "cut off mid-sen"}),
        ('{"a": 1, "b":', {"a": 1}),
        ("{\u201ca\u201d: \u201cquoted\u201d}", {"a": "quoted"}),
        ("no json here", None),
        ("[1, 2, 3]", None),
    ],
)
def test_extract_json_object_repairs_the_usual_slips(text: str, expected: object) -> None:
    assert extract_json_object(text) == expected


def test_the_json_instruction_is_appended_to_the_system_prompt() -> None:
    assert with_json_instruction("You summarise.").startswith("You summarise.\n\nRespond with JSON only")
    assert with_json_instruction("").startswith("Respond with JSON only")
