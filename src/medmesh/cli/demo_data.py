"""What `medmesh up` prints once its services are ready, and the demo data it seeds.

Every seeder goes through a service's API with the admin token `medmesh up` prints, as any
client would, and leaves what exists alone: running `medmesh up` again adds nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from medmesh.cli.devices_demo import seed_demo_device, stream_demo_vitals
from medmesh.cli.payments_demo import DEMO_PATIENT, seed_demo_payment
from medmesh.cli.seeding import seed_synthetic_patients
from medmesh.cli.services import echo as _echo


def print_summary(
    urls: dict[str, str], creds: dict[str, Any], credentials: Path, token: str | None
) -> None:
    """Each service's URL, docs and metrics; on a first run the new credentials; the token."""
    _echo("\nmedmesh is running:")
    for name, url in urls.items():
        _echo(f"  {name:<10} {url}   docs {url}/docs   metrics {url}/metrics")
    if "auth" not in urls:
        return
    if creds.get("new"):
        _echo(
            f"\nadmin user: {creds.get('admin_username')}  password: {creds.get('admin_password')}"
        )
        for client_id, secret in creds.get("clients", {}).items():
            _echo(f"client {client_id}: {secret}")
    _echo(f"\n(dev credentials are kept in {credentials}, readable only by you)")
    if token:
        _echo(f"\nadmin access token (15 min):\n{token}\n")
        _echo(f"try: curl -s {urls['auth']}/admin/users -H 'Authorization: Bearer {token[:16]}...'")


@dataclass(frozen=True)
class DemoOptions:
    """What the seeders may be told: the number of synthetic patients to load."""

    synthetic_patients: int


@dataclass(frozen=True)
class Seeder:
    """Seeds one service's demo data when every service it needs is running."""

    needs: frozenset[str]
    seed: Callable[[dict[str, str], str, DemoOptions], None]


def seed_demo_data(urls: dict[str, str], token: str, *, synthetic_patients: int) -> None:
    """Run every seeder whose services `medmesh up` started, in order."""
    options = DemoOptions(synthetic_patients=synthetic_patients)
    for seeder in SEEDERS:
        if seeder.needs <= set(urls):
            seeder.seed(urls, token, options)


def _seed_phi(urls: dict[str, str], token: str, _: DemoOptions) -> None:
    """Load the demo FHIR resources and show how to read them."""
    from medmesh.phi.demo import seed_demo

    fhir = f"{urls['phi']}/fhir"
    try:
        report = asyncio.run(seed_demo(fhir, token))
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"\nphi: demo data not loaded ({exc})")
        return
    _echo(
        f"\nphi FHIR base: {fhir}  (demo resources: {len(report.created)} loaded now, "
        f"{len(report.present)} already there)"
    )
    _echo(
        f"try: curl -s {fhir}/Patient/example/\\$everything "
        '-H "Authorization: Bearer $TOKEN"\n'
        f"     curl -s '{fhir}/Observation?subject=Patient/example' "
        '-H "Authorization: Bearer $TOKEN"   (TOKEN = the admin access token above)'
    )


def _seed_synthetic(urls: dict[str, str], token: str, options: DemoOptions) -> None:
    """Load synthetic patients into phi through a synthetic-phi-service job, and say so."""
    if options.synthetic_patients <= 0:
        return
    url = urls["synthetic"]
    _echo(f"\nsynthetic: loading {options.synthetic_patients} synthetic patients into phi ...")
    try:
        _echo("synthetic: " + seed_synthetic_patients(url, token, options.synthetic_patients))
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"synthetic: patients not loaded ({exc})")
        return
    _echo(
        f'try: curl -s {url}/v1/jobs -H "Authorization: Bearer $TOKEN"\n'
        f'     curl -s -X POST {url}/v1/generate -H "Authorization: Bearer $TOKEN" '
        "-H 'Content-Type: application/json' -d '{\"size\": 2, \"seed\": 42}'"
    )


def _seed_payments(urls: dict[str, str], token: str, _: DemoOptions) -> None:
    """A customer tied to phi's demo patient (when phi runs) and its paid copay."""
    url = urls["payments"]
    try:
        demo = seed_demo_payment(url, token, patient=DEMO_PATIENT if "phi" in urls else None)
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"\npayments: demo payment not made ({exc})")
        return
    _echo(f"\npayments API: {url}/v1  (Stripe-compatible; the token is the API key)")
    _echo("payments: " + demo.summary())
    _echo(
        f"try: curl -s '{url}/v1/payment_intents?customer={demo.customer}' "
        '-H "Authorization: Bearer $TOKEN"\n'
        f'     curl -s {url}/v1/ledger/balances -H "Authorization: Bearer $TOKEN"'
    )
    if "phi" in urls:
        from medmesh.payments.patient_records.resources import fhir_id

        record = f"{urls['phi']}/fhir/PaymentReconciliation/{fhir_id(demo.payment_intent)}"
        _echo(
            f'     curl -s {record} -H "Authorization: Bearer $TOKEN"   '
            f"(the copay in {DEMO_PATIENT}'s record)"
        )


def _seed_devices(urls: dict[str, str], token: str, _: DemoOptions) -> None:
    """A device assigned to phi's demo patient (when phi runs); its key when it is new."""
    url = urls["devices"]
    try:
        demo = seed_demo_device(url, token, patient=DEMO_PATIENT if "phi" in urls else None)
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"\ndevices: demo device not registered ({exc})")
        return
    _echo(f"\ndevices API: {url}/v1  (registry, readings, alerts)")
    _echo("devices: " + demo.summary())
    key = demo.key or "<its key, shown when it was registered>"
    if demo.key:
        _echo(f"device key (shown once): {demo.key}")
    _echo(
        f"try: curl -s -X POST {url}/v1/devices/{demo.id}/readings -H 'X-Device-Key: {key}' "
        '-H \'Content-Type: application/json\' -d \'{"reading_id": "r-1", "timestamp": '
        '"\'"$(date -u +%FT%TZ)"\'", "metric": "spo2", "value": 97, "unit": "%"}\''
    )
    try:
        stream = stream_demo_vitals(url, token, demo.id)
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"devices: no vitals simulated ({exc})")
    else:
        _echo("devices: " + stream.summary())
        _echo(
            f"     curl -s '{url}/v1/alerts?device_id={demo.id}' -H \"Authorization: Bearer $TOKEN\""
        )
    if demo.patient and "phi" in urls:
        _echo(
            f"     curl -s '{urls['phi']}/fhir/Observation?subject={demo.patient}&code=59408-5' "
            '-H "Authorization: Bearer $TOKEN"   (its SpO2 Observations in phi)'
        )


#: The demo data of each service, in the order it is seeded (phi's patient before its payer
#: and its device).
SEEDERS = (
    Seeder(frozenset({"phi"}), _seed_phi),
    Seeder(frozenset({"phi", "synthetic"}), _seed_synthetic),
    Seeder(frozenset({"payments"}), _seed_payments),
    Seeder(frozenset({"devices"}), _seed_devices),
)
