"""The control of the ingest benchmark: a bare FastAPI app that parses the same JSON batch
(orjson) and answers how many entries it held. No middleware, no validation, no database."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@app.post("/v1/readings")
async def readings(request: Request) -> dict[str, int]:
    body = orjson.loads(await request.body())
    return {"stored": len(body["readings"])}
