"""Commands packed into the Redis protocol by hiredis's C packer instead of redis-py's Python one.

redis-py's asyncio connections build every command's bytes in Python, about 4 µs
for a job's dispatch script against 0.5 µs in C. A worker packs a command for
every reservation, acknowledgement and wake-up, and a producer for every
dispatch, so the packer sits on the path from dispatch to a job's start.
(redis-py's synchronous client already packs with hiredis when it is installed.)

Only arguments whose bytes both packers agree on take the fast path: ``str``,
``bytes``, ``int`` (not ``bool``, which redis-py refuses) and ``float``, and a
command name without a space (redis-py splits ``"CONFIG GET"`` into two
arguments). Anything else goes to redis-py's packer unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection

_c_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _c_pack
except ImportError:  # hiredis is optional for redis-py; without it nothing changes
    _c_pack = None

_PACKABLE = frozenset({str, bytes, int, float})


def _fast_packable(args: tuple[Any, ...]) -> bool:
    name = args[0]
    if (type(name) is str and " " in name) or (type(name) is bytes and b" " in name):
        return False
    return all(type(arg) in _PACKABLE for arg in args)


@functools.cache
def with_c_packing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """``cls`` with hiredis packing, or ``cls`` itself when hiredis is not installed."""
    if _c_pack is None:
        return cls
    pack = _c_pack

    class CPacking(cls):  # type: ignore[valid-type,misc]
        def pack_command(self, *args: Any) -> list[bytes]:
            if args and _fast_packable(args):
                return [pack(args)]
            packed: list[bytes] = super().pack_command(*args)
            return packed

    CPacking.__name__ = CPacking.__qualname__ = f"CPacking{cls.__name__}"
    return CPacking


def use_c_packing(client: Any) -> None:
    """Make the connections ``client``'s pool opens from now on pack with hiredis."""
    pool = client.connection_pool
    pool.connection_class = with_c_packing(pool.connection_class)
