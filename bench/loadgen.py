"""A small HTTP/1.1 keep-alive load generator (asyncio + uvloop) for the benchmarks.

It sends one pre-built request over many persistent connections for a fixed time
and reports requests/s and latency percentiles. It runs in its own process,
pinned to its own core where the machine has two, so the server under test
keeps the other one.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    #: CPU seconds the server process used during the measurement (None when not known). Unlike
    #: requests/s it does not change when something else shares the server's core.
    server_cpu_seconds: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]

    def summary(self) -> dict[str, float]:
        cpu: dict[str, float] = {}
        if self.server_cpu_seconds is not None and self.requests:
            cpu["server_cpu_us_per_request"] = round(
                self.server_cpu_seconds / self.requests * 1e6, 1
            )
        return {
            **cpu,
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(0.50), 3),
            "p95_ms": round(self.percentile(0.95), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 3)
            if self.latencies_ms
            else float("nan"),
        }


def build_request(
    method: str, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(
    host: str, port: int, request: bytes, deadline: float, result: LoadResult, expect: int
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                lower = line.lower()
                if lower.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                elif lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            if status == expect:
                result.requests += 1
            else:
                result.errors += 1
    finally:
        writer.close()


async def _run(
    host: str, port: int, request: bytes, seconds: float, connections: int, expect: int
) -> LoadResult:
    result = LoadResult(0, 0, 0.0, [])
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_connection(host, port, request, deadline, result, expect) for _ in range(connections))
    )
    result.seconds = time.perf_counter() - start
    return result


def run_load(
    host: str,
    port: int,
    request: bytes,
    *,
    seconds: float = 5.0,
    connections: int = 32,
    expect: int = 200,
    warmup: float = 1.0,
    server_pid: int | None = None,
) -> LoadResult:
    """Drive ``request`` at the server for ``seconds`` (after a warm-up) and return the result;
    with ``server_pid``, also the CPU time that server spent on the measured requests."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    if warmup:
        asyncio.run(_run(host, port, request, warmup, connections, expect))
    before = process_cpu_seconds(server_pid) if server_pid else 0.0
    result = asyncio.run(_run(host, port, request, seconds, connections, expect))
    if server_pid:
        result.server_cpu_seconds = process_cpu_seconds(server_pid) - before
    return result
