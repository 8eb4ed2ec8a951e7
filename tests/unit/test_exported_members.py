"""``docmill.queue.__all__`` is the engine's public API: it must name exactly what is public."""

from __future__ import annotations

from types import ModuleType

import docmill.queue


def test_every_name_in_all_exists() -> None:
    missing = [name for name in docmill.queue.__all__ if not hasattr(docmill.queue, name)]

    assert missing == []


def test_every_public_member_is_in_all() -> None:
    public = {
        name
        for name, value in vars(docmill.queue).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }

    assert sorted(public - set(docmill.queue.__all__)) == []


def test_all_is_sorted_without_duplicates() -> None:
    assert docmill.queue.__all__ == sorted(set(docmill.queue.__all__))


def test_exported_members_say_they_belong_to_the_engine() -> None:
    foreign = [
        name
        for name in docmill.queue.__all__
        if not getattr(getattr(docmill.queue, name), "__module__", "docmill.queue").startswith(
            "docmill.queue"
        )
    ]

    assert foreign == []
