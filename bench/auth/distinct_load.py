"""Load of requests that must all differ (one-time authorization codes): each of the
connections takes the next prepared request until none is left. Same wire format, connection
count and CPU accounting as ``bench/loadgen.py``, which sends one request over and over."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

from bench.loadgen import LoadResult, process_cpu_seconds


async def _connection(
    host: str, port: int, requests: Iterator[bytes], result: LoadResult, expect: int
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            if status == expect:
                result.requests += 1
            else:
                result.errors += 1
    finally:
        writer.close()


def run_distinct(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int = 32,
    expect: int = 200,
    server_pid: int | None = None,
) -> LoadResult:
    """Send every one of ``requests`` once over ``connections`` keep-alive connections; the
    result, with the server's CPU time over the run when ``server_pid`` is given."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    shared = iter(requests)

    async def drive() -> LoadResult:
        result = LoadResult(0, 0, 0.0, [])
        start = time.perf_counter()
        await asyncio.gather(
            *(_connection(host, port, shared, result, expect) for _ in range(connections))
        )
        result.seconds = time.perf_counter() - start
        return result

    before = process_cpu_seconds(server_pid) if server_pid else 0.0
    result = asyncio.run(drive())
    if server_pid:
        result.server_cpu_seconds = process_cpu_seconds(server_pid) - before
    return result
