"""Generates the Grafana dashboard of every medmesh service.

Run ``python deploy/observability/grafana/dashboards.py`` after changing a
panel; tests/deploy checks that the JSON files in ``dashboards/`` are what this
script writes. A new service adds its ``ServiceDashboard`` (its domain panels,
below the RED, audit, outbox and process rows every service gets; the model is
in ``dashboard_model.py``) to ``SERVICES``.

Use only metric names the services emit (docs/deploy.md, "Metrics").
"""

from __future__ import annotations

import json
from pathlib import Path

from dashboard_model import ServiceDashboard, render_dashboard
from devices_panels import DEVICES
from service_panels import AUTH, PAYMENTS, PHI, SYNTHETIC

DASHBOARD_DIR = Path(__file__).parent / "dashboards"

SERVICES: list[ServiceDashboard] = [AUTH, PHI, SYNTHETIC, PAYMENTS, DEVICES]


def dashboard_files() -> dict[Path, str]:
    """Every dashboard file and the text it must hold."""
    return {
        DASHBOARD_DIR / f"{service.name}.json": json.dumps(render_dashboard(service), indent=2)
        + "\n"
        for service in SERVICES
    }


def main() -> None:
    DASHBOARD_DIR.mkdir(exist_ok=True)
    for path, text in dashboard_files().items():
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
