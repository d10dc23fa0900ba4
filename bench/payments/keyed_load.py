"""``bench.loadgen`` with a new ``Idempotency-Key`` on every request: a key already used would
be replayed, not run, so the request cannot be one pre-built byte string. Keep-alive connections,
uvloop, pinned to core 1 (the server has core 0), the server's CPU time per request."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator

from bench.loadgen import LoadResult, process_cpu_seconds


async def _keyed(
    host: str,
    port: int,
    head: bytes,
    body: bytes,
    keys: Iterator[int],
    deadline: float,
    result: LoadResult,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(b"%sIdempotency-Key: bench-%d\r\n\r\n%s" % (head, next(keys), body))
            answer = await reader.readuntil(b"\r\n\r\n")
            size = next(
                int(line.split(b":", 1)[1])
                for line in answer.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(size)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if answer[9:12] == b"200":
                result.requests += 1
            else:
                result.errors += 1
    finally:
        writer.close()


async def _round(
    host: str,
    port: int,
    head: bytes,
    body: bytes,
    keys: Iterator[int],
    seconds: float,
    connections: int,
) -> LoadResult:
    result = LoadResult(0, 0, 0.0, [])
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_keyed(host, port, head, body, keys, deadline, result) for _ in range(connections))
    )
    result.seconds = time.perf_counter() - started
    return result


def run_keyed_load(
    url: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    seconds: float,
    connections: int,
    server_pid: int | None,
    warmup: float = 1.0,
) -> LoadResult:
    """POST ``body`` to ``url + path`` with a fresh key each time for ``seconds`` after a
    warm-up; with ``server_pid``, the server's CPU seconds over the measured requests."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    import uvloop

    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n").encode()
    keys = itertools.count()
    uvloop.run(_round(host, int(port), head, body, keys, warmup, connections))
    before = process_cpu_seconds(server_pid) if server_pid else 0.0
    result = uvloop.run(_round(host, int(port), head, body, keys, seconds, connections))
    if server_pid:
        result.server_cpu_seconds = process_cpu_seconds(server_pid) - before
    return result
