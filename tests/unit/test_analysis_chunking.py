"""Chunks respect the token budget, prefer section and sentence boundaries, and keep their place."""

from __future__ import annotations

import pytest

from docmill.documents.analysis.blocks import Block
from docmill.documents.analysis.chunking import ChunkingOptions, chunk_blocks, split_sentences
from docmill.documents.analysis.model import Chunk
from docmill.documents.analysis.tokens import EstimatingTokenCounter

COUNTER = EstimatingTokenCounter()
SENTENCE = "The warehouse in Poznan shipped more pallets than planned this week. "


def sentences(count: int, sentence: str = SENTENCE) -> str:
    return (sentence * count).strip()


def assert_within_budget(chunks: list[Chunk], budget: int) -> None:
    for chunk in chunks:
        assert chunk.tokens == COUNTER.count(chunk.text)
        assert chunk.tokens <= budget, (chunk.index, chunk.tokens)


def test_estimate_uses_four_chars_per_token_and_more_tokens_for_cyrillic() -> None:
    assert COUNTER.count("abcd" * 100) == 100
    assert COUNTER.count("абвгд" * 50) == 100
    assert COUNTER.count("") == 0


def test_options_for_a_model_take_a_sixteenth_of_the_window_within_bounds() -> None:
    assert ChunkingOptions.for_model(200_000).chunk_tokens == 8_000
    assert ChunkingOptions.for_model(32_000).chunk_tokens == 2_000
    assert ChunkingOptions.for_model(4_096).chunk_tokens == 512
    with pytest.raises(ValueError):
        ChunkingOptions(10)


def test_budget_is_respected_for_long_paragraphs_unbroken_runs_and_cyrillic() -> None:
    blocks = [
        Block.heading("Report", 1, page=1),
        Block.paragraph(sentences(80), page=1),
        Block.paragraph("x" * 5_000, page=2),  # one "word" longer than a chunk
        Block.paragraph(" ".join(["word"] * 3_000), page=2),  # no sentence ends at all
        Block.heading("Отчёт", 1, page=3),
        Block.paragraph(sentences(60, "Склад в Познани отгрузил больше паллет, чем планировалось. "), page=3),
        Block.table([["Quarter", "Revenue"], *[[f"Q{i}", str(i * 1000)] for i in range(300)]], page=4),
    ]
    chunks = chunk_blocks(blocks, ChunkingOptions(200))
    assert_within_budget(chunks, 200)
    joined = "".join(chunk.text for chunk in chunks)
    assert joined.count("x") >= 5_000  # nothing lost, even from the unbreakable run


def test_paragraphs_are_cut_between_sentences_when_possible() -> None:
    chunks = chunk_blocks([Block.paragraph(sentences(40))], ChunkingOptions(100))
    assert len(chunks) > 3
    assert all(chunk.text.endswith("this week.") for chunk in chunks)
    assert_within_budget(chunks, 100)


def test_a_section_that_fits_starts_its_own_chunk_instead_of_being_split() -> None:
    # Given two sections of about 60% of the budget each
    blocks = [
        Block.heading("Alpha", 1),
        Block.paragraph(sentences(7)),
        Block.heading("Beta", 1),
        Block.paragraph(sentences(7)),
    ]
    # When they are chunked
    chunks = chunk_blocks(blocks, ChunkingOptions(200))
    # Then each section is one whole chunk
    assert [chunk.heading_path for chunk in chunks] == [["Alpha"], ["Beta"]]
    assert [chunk.text.split("\n\n")[0] for chunk in chunks] == ["Alpha", "Beta"]


def test_small_sections_share_a_chunk_under_their_common_heading() -> None:
    blocks = [
        Block.heading("Finance", 1),
        Block.heading("Revenue", 2),
        Block.paragraph("Revenue grew."),
        Block.heading("Costs", 2),
        Block.paragraph("Costs fell."),
    ]
    (chunk,) = chunk_blocks(blocks, ChunkingOptions(200))
    assert chunk.heading_path == ["Finance"]
    assert chunk.text == "Finance\n\nRevenue\n\nRevenue grew.\n\nCosts\n\nCosts fell."


def test_chunks_keep_the_heading_path_and_page_range_of_their_text() -> None:
    blocks = [
        Block.heading("Operations", 1, page=2),
        Block.heading("Transport", 2, page=2),
        Block.paragraph(sentences(10), page=2),
        Block.paragraph(sentences(10), page=3),
        Block.paragraph(sentences(10), page=4),
    ]
    chunks = chunk_blocks(blocks, ChunkingOptions(200))
    assert len(chunks) == 3
    assert chunks[0].heading_path == ["Operations", "Transport"]
    assert all(chunk.heading_path == ["Operations", "Transport"] for chunk in chunks[1:])
    assert [(chunk.page_start, chunk.page_end) for chunk in chunks] == [(2, 2), (3, 3), (4, 4)]


def test_a_chunk_never_ends_with_a_heading() -> None:
    blocks: list[Block] = []
    for number in range(12):
        blocks += [Block.heading(f"Part {number}", 1), Block.paragraph(sentences(3 + number % 4))]
    chunks = chunk_blocks(blocks, ChunkingOptions(120))
    headings = {f"Part {number}" for number in range(12)}
    assert all(chunk.text.split("\n\n")[-1] not in headings for chunk in chunks)
    assert_within_budget(chunks, 120)


class WordCounter:
    """A stand-in for a real tokenizer: one token per word."""

    def count(self, text: str) -> int:
        return len(text.split())


def test_a_different_token_counter_can_be_plugged_in() -> None:
    chunks = chunk_blocks([Block.paragraph(sentences(30))], ChunkingOptions(64), WordCounter())
    assert all(len(chunk.text.split()) <= 64 for chunk in chunks)
    assert all(chunk.tokens == len(chunk.text.split()) for chunk in chunks)


def test_sentence_splitting_handles_quotes_and_cyrillic() -> None:
    text = 'He said "Done." Then left! Потом ушёл. «Итог» ясен? Yes.'
    assert split_sentences(text) == ['He said "Done."', "Then left!", "Потом ушёл.", "«Итог» ясен?", "Yes."]
    assert split_sentences("Costs fell, e.g. fuel and tolls.") == ["Costs fell, e.g. fuel and tolls."]
