"""`medmesh up`'s synthetic patients: a synthetic-phi-service job that loads them into phi.

It goes through the service's API as any client would (the job runs with synthetic's own
client credentials for phi). The run is the same every time (fixed seed) and skips patients phi
already has, so running `medmesh up` again loads nothing twice.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

DEFAULT_SYNTHETIC_PATIENTS = 100
#: The seed of `medmesh up`'s run: the same patients every time.
UP_SEED = 20_240_501
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


def _problem(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return f"{response.status_code} {detail or response.text[:200]}"


def seed_synthetic_patients(
    base_url: str, token: str, patients: int, *, timeout: float = 600.0, poll: float = 0.5
) -> str:
    """Run the loading job at ``base_url`` and wait for it; a one-line summary of what it did.

    Raises ``RuntimeError`` when the job cannot start, fails or takes longer than ``timeout``.
    """
    request = {
        "size": patients,
        "seed": UP_SEED,
        "formats": [],
        "target": "phi",
        "skip_existing": True,
    }
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as http:
        created = http.post("/v1/jobs", json=request)
        if created.status_code != 202:
            raise RuntimeError(_problem(created))
        location = created.headers["location"]
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = created.json()
        while job["status"] not in FINISHED:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the job is still {job['status']} after {timeout:.0f} s")
            time.sleep(poll)
            answer = http.get(location)
            if answer.status_code != 200:
                raise RuntimeError(_problem(answer))
            job = answer.json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} {job['status']}: {job.get('error')}")
    load = job["load"] or {}
    return (
        f"{load.get('patients_loaded', 0)} patients loaded into phi "
        f"({load.get('resources_loaded', 0)} resources in {load.get('seconds', 0)} s), "
        f"{load.get('patients_already_present', 0)} already there (job {job['id']})"
    )
