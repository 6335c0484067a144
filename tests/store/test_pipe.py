"""The pipelined connection (gateway/store/redis/pipe.py) against a real
redis-server and a silent one: replies pair with their commands whatever way
they were sent, a dead or silent Redis fails what is in flight with StoreDown,
and the next command connects again."""
from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.store.base import StoreDown
from gateway.store.redis.pipe import Pipe, ReplyError, encode


async def test_replies_pair_with_their_commands(redis_url):
    pipe = Pipe(redis_url, 2.0, "test-pipe")
    try:
        await pipe.connect()
        calls = [pipe.call("ECHO", f"c{i}") for i in range(50)]
        answered: list[bytes] = []                                       # written at once, before the calls
        assert all(pipe.send_with(encode(["ECHO", f"s{i}"]), answered.append) for i in range(50))
        more = [pipe.call("ECHO", f"d{i}") for i in range(50)]
        assert await asyncio.gather(*calls) == [f"c{i}".encode() for i in range(50)]
        assert answered == [f"s{i}".encode() for i in range(50)]
        assert await asyncio.gather(*more) == [f"d{i}".encode() for i in range(50)]
        assert await pipe.call("EVAL", "return {1, {2, 'x'}, redis.status_reply('OK')}", 0) == [1, [2, b"x"], b"OK"]
        with pytest.raises(ReplyError, match="NOSCRIPT"):
            await pipe.call("EVALSHA", "0" * 40, 0)
        assert await pipe.call("ECHO", "after an error") == b"after an error"
        big = b"x" * 3_000_000
        assert await pipe.call("ECHO", big) == big                # a reply in many reads
    finally:
        await pipe.close()


async def test_a_redis_that_goes_away_fails_what_is_in_flight_then_comes_back(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 2.0, "test-pipe")
    try:
        assert await pipe.call("PING") == b"PONG"
        killed = await pipe.call("CLIENT", "KILL", "SKIPME", "no", "TYPE", "normal")
        assert killed >= 1                                         # this very connection, among others
        with pytest.raises(StoreDown):
            await pipe.call("PING")
        assert await pipe.call("PING") == b"PONG"                  # connected again
    finally:
        await pipe.close()


async def test_a_silent_redis_is_down_after_the_threshold():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    pipe = Pipe(f"redis://127.0.0.1:{port}/0", 0.3, "test-pipe")
    try:
        with pytest.raises(StoreDown):          # accepts, never answers: not even the set-up
            await asyncio.wait_for(pipe.call("PING"), 5)
    finally:
        await pipe.close()
        server.close()


def test_commands_are_resp_arrays_of_bulk_strings():
    assert encode(["SET", "k", 12, b"\x00v", 1.5]) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\x00v\r\n$3\r\n1.5\r\n")
