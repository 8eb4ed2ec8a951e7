"""hiredis packing gives the same bytes as redis-py's packer, and leaves what it cannot pack alone."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection

from docmill.queue.backends.redis_wire import with_c_packing


def test_hiredis_is_installed_so_commands_are_packed_in_c() -> None:
    # redis[hiredis] is a dependency: without it every test below would compare redis-py with itself
    assert with_c_packing(Connection) is not Connection


SAMPLES: list[tuple[Any, ...]] = [
    ("EVALSHA", "ab" * 20, 1, "docmill:{default}", 86400000, '[["id",1796603896.624952,0,0,"",[]]]'),
    ("SET", "k", 1.5),
    ("SET", "k", 0.1),
    ("SET", "k", 1796603896.624952),
    ("SET", "k", 10**20),
    ("SET", "k", -3),
    ("SET", "k", "é€"),
    ("SET", b"k", b"\x00\xff"),
    ("SET", "k", ""),
    ("CONFIG GET", "maxmemory"),  # a name with a space: redis-py splits it
    ("SET", "k", memoryview(b"abc")),  # not a fast type: redis-py packs it
]


@pytest.mark.parametrize("args", SAMPLES)
def test_packed_bytes_match_redis_pys_own(args: tuple[Any, ...]) -> None:
    plain, fast = Connection(), with_c_packing(Connection)()
    assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))


def test_a_bool_is_refused_as_redis_py_refuses_it() -> None:
    from redis.exceptions import DataError

    with pytest.raises(DataError):
        with_c_packing(Connection)().pack_command("SET", "k", True)


def test_the_connection_kind_of_the_url_is_kept() -> None:
    unix = with_c_packing(UnixDomainSocketConnection)
    assert issubclass(unix, UnixDomainSocketConnection)
    assert with_c_packing(UnixDomainSocketConnection) is unix  # one class per kind, made once
