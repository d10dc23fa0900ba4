"""The dashboard model: a panel, a service's dashboard, the panels every service gets, and
their Grafana JSON. ``dashboards.py`` lists the services and writes the files."""

from __future__ import annotations

from dataclasses import dataclass, field

RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    """One Grafana panel: a title, one or more PromQL queries and a unit."""

    title: str
    queries: dict[str, str]  # legend -> PromQL
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    description: str = ""
    thresholds: tuple[tuple[str, float | None], ...] = (("green", None),)


@dataclass(frozen=True)
class ServiceDashboard:
    name: str
    title: str
    domain_panels: list[Panel] = field(default_factory=list)


def generic_panels(service: str) -> list[Panel]:
    """The panels every service has: RED, audit, outbox and process."""
    sel = f'service="{service}"'
    return [
        Panel(
            "Requests per second by route",
            {
                "{{method}} {{route}}": "sum by (method, route) "
                f"(rate(medmesh_http_requests_total{{{sel}}}[{RATE}]))"
            },
            unit="reqps",
        ),
        Panel(
            "Error ratio",
            {
                "5xx": f'sum(rate(medmesh_http_requests_total{{{sel},status=~"5.."}}[{RATE}]))'
                f" / sum(rate(medmesh_http_requests_total{{{sel}}}[{RATE}]))",
                "4xx": f'sum(rate(medmesh_http_requests_total{{{sel},status=~"4.."}}[{RATE}]))'
                f" / sum(rate(medmesh_http_requests_total{{{sel}}}[{RATE}]))",
            },
            unit="percentunit",
        ),
        Panel(
            "Latency (all routes)",
            {
                f"p{q}": f"histogram_quantile(0.{q}, sum by (le) "
                f"(rate(medmesh_http_request_duration_seconds_bucket{{{sel}}}[{RATE}])))"
                for q in ("50", "95", "99")
            },
            unit="s",
        ),
        Panel(
            "p95 latency by route",
            {
                "{{route}}": "histogram_quantile(0.95, sum by (route, le) "
                f"(rate(medmesh_http_request_duration_seconds_bucket{{{sel}}}[{RATE}])))"
            },
            unit="s",
        ),
        Panel(
            "Requests in progress",
            {"{{method}}": f"sum by (method) (medmesh_http_requests_in_progress{{{sel}}})"},
        ),
        Panel(
            "Mean response size by route",
            {
                "{{route}}": "sum by (route) "
                f"(rate(medmesh_http_response_size_bytes_sum{{{sel}}}[{RATE}]))"
                " / sum by (route) "
                f"(rate(medmesh_http_response_size_bytes_count{{{sel}}}[{RATE}]))"
            },
            unit="bytes",
        ),
        Panel(
            "Audit records written and failed",
            {
                "written": f"sum(rate(medmesh_audit_records_total{{{sel}}}[{RATE}]))",
                "failed": f"sum(rate(medmesh_audit_write_failures_total{{{sel}}}[{RATE}]))",
            },
            unit="ops",
        ),
        Panel(
            "Outbox backlog",
            {"backlog": f"sum(medmesh_outbox_backlog{{{sel}}})"},
            description="Messages waiting for delivery; it should drain back to zero.",
        ),
        Panel(
            "CPU per instance",
            {"{{instance}}": f'rate(process_cpu_seconds_total{{job="{service}"}}[{RATE}])'},
            unit="percentunit",
        ),
        Panel(
            "Resident memory per instance",
            {"{{instance}}": f'process_resident_memory_bytes{{job="{service}"}}'},
            unit="bytes",
        ),
    ]


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, object]:
    steps = [{"color": color, "value": value} for color, value in panel.thresholds]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (legend, expr) in enumerate(panel.queries.items())
        ],
    }


def render_dashboard(service: ServiceDashboard) -> dict[str, object]:
    """The Grafana dashboard JSON model of one service."""
    panels = [*generic_panels(service.name), *service.domain_panels]
    rendered = [
        render_panel(panel, i + 1, x=(i % 2) * 12, y=(i // 2) * 8) for i, panel in enumerate(panels)
    ]
    return {
        "uid": f"medmesh-{service.name}",
        "title": f"medmesh / {service.title}",
        "tags": ["medmesh", service.name],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": rendered,
    }
