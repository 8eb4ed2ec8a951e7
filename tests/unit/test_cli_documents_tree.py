"""`docmill documents show` prints the section tree analysis found, for people."""

from __future__ import annotations

import io

from rich.console import Console

from docmill.cli.documents import render_structure
from docmill.documents.analysis.analyze import analyze_bytes

TEXT = b"""\
Chapter 1. Storage

Disks hold data.

1.1 Disks

Two disks, both mirrored for safety.

1.2 Arrays

One array.

Chapter 2. Network

Cables.
"""


def rendered(limit: int = 200) -> list[str]:
    analysis = analyze_bytes(TEXT, filename="guide.txt").to_dict()
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    render_structure(console, analysis, limit=limit)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_the_tree_shows_every_section_with_its_words() -> None:
    assert rendered() == [
        "Chapter 1. Storage",
        "├── Chapter 1. Storage  3 words",
        "│   ├── 1.1 Disks  6 words",
        "│   └── 1.2 Arrays  2 words",
        "└── Chapter 2. Network  1 word",
    ]


def test_a_long_tree_stops_and_says_where_the_rest_is() -> None:
    lines = rendered(limit=2)
    assert lines[:3] == [
        "Chapter 1. Storage",
        "└── Chapter 1. Storage  3 words",
        "    └── 1.1 Disks  6 words",
    ]
    assert lines[3:] == ["... and 2 more sections (--json prints the whole tree)."]
