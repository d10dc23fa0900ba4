"""A value the database refuses (a NUL character on PostgreSQL) is the client's error: 400, not 500."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import SessionDep
from medmesh.platform.testing import app_client

metadata = MetaData()
notes = Table(
    "notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(200))
)


class NoteSettings(ServiceSettings):
    service_name: ClassVar[str] = "notes"


class Note(BaseModel):
    text: str


router = APIRouter()


@router.post("/notes", status_code=201)
async def add_note(note: Note, session: SessionDep) -> dict[str, int]:
    result = await session.execute(insert(notes).values(text=note.text).returning(notes.c.id))
    return {"id": int(result.scalar_one())}


async def test_nul_character_is_a_400_and_nothing_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    settings = NoteSettings(database_url=database_url, var_dir=tmp_path)
    app = create_service_app(
        settings, title="t", version="1", description="", routers=[router], verify_tokens=False
    )
    async with app.state.database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with app_client(app) as client:
        ok = await client.post("/notes", json={"text": "fine"})
        assert ok.status_code == 201
        response = await client.post("/notes", json={"text": "a\u0000b"})
    if app.state.database.is_sqlite:
        # SQLite stores NUL characters; nothing to refuse.
        assert response.status_code == 201
        return
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_value"
    async with app.state.database.engine.connect() as conn:
        texts = (await conn.execute(select(notes.c.text))).scalars().all()
    assert texts == ["fine"]
