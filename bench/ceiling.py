"""The bare-stack ceiling for ``bench/e2e.py``: FastAPI on uvicorn, inserting one row per POST
into PostgreSQL with asyncpg, and nothing else (no authentication, validation of a body, audit
or outbox). Our throughput is reported as a share of this app's, run with the same server
settings on the same machine.

    CEILING_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_ceiling \\
        uvicorn --app-dir bench ceiling:app --loop uvloop --http httptools --no-server-header
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["CEILING_DATABASE_URL"], min_size=5, max_size=20)
    async with pool.acquire() as connection:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS rows (id bigserial PRIMARY KEY, body jsonb NOT NULL)"
        )
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/rows", status_code=201)
async def insert(request: Request, response: Response) -> dict[str, Any]:
    body = await request.json()
    async with request.app.state.pool.acquire() as connection:
        row_id = await connection.fetchval(
            "INSERT INTO rows (body) VALUES ($1) RETURNING id", json.dumps(body)
        )
    return {"id": row_id}
