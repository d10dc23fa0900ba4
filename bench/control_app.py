"""The control of every benchmark: a bare FastAPI app on the same server settings.

``GET /ping`` answers a small JSON body; ``POST /form`` parses a small
url-encoded form the way the token endpoint does. No middleware, no database.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@app.post("/form")
async def form(request: Request) -> dict[str, int]:
    body = await request.body()
    return {"fields": len(parse_qsl(body.decode()))}
