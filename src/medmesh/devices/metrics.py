"""medical-device service domain metrics (registered on the app's registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from medmesh.platform.metrics import ServiceMetrics

OUTCOMES = ("stored", "duplicate", "rejected")
TRANSPORTS = ("http", "mqtt")


@dataclass(frozen=True)
class DevicesMetrics:
    readings: Counter
    ingest_full: Counter
    pending: Gauge
    delivered: Counter
    backlog: Gauge
    lag: Gauge
    parked: Gauge
    mqtt_messages: Counter
    mqtt_connected: Gauge
    mqtt_subscriptions: Counter
    chunks_merged: Counter

    @classmethod
    def register(cls, metrics: ServiceMetrics) -> DevicesMetrics:
        readings = metrics.counter(
            "medmesh_devices_readings_total",
            "Reading entries received, by transport (http, mqtt) and outcome (stored, "
            "duplicate, rejected).",
            ("transport", "outcome"),
        )
        full = metrics.counter(
            "medmesh_devices_ingest_full_total",
            "Ingest requests or MQTT batches turned away because too many readings were "
            "waiting to be stored (503 with Retry-After).",
            ("transport",),
        )
        pending = metrics.gauge(
            "medmesh_devices_ingest_pending_readings",
            "Readings admitted and not yet stored (bounded by MAX_PENDING_READINGS).",
        )
        delivered = metrics.counter(
            "medmesh_devices_observations_delivered_total",
            "Observations phi-service accepted (each reading once, however often retried).",
        )
        backlog = metrics.gauge(
            "medmesh_devices_delivery_backlog_bundles",
            "Bundles of Observations and Device writes waiting for phi-service (neither delivered "
            "nor parked).",
        )
        lag = metrics.gauge(
            "medmesh_devices_delivery_lag_seconds",
            "Age of the oldest message waiting for phi-service (0 when none waits).",
        )
        parked = metrics.gauge(
            "medmesh_devices_delivery_parked_bundles",
            "Messages for phi-service given up on after DELIVERY_MAX_ATTEMPTS failures (kept "
            "for an operator).",
        )
        mqtt = metrics.counter(
            "medmesh_devices_mqtt_messages_total",
            "MQTT messages received, by outcome: accepted (its entries went to ingest, see "
            "medmesh_devices_readings_total for each one's fate) or refused (not JSON, not on a "
            "device's topic, too many entries, or only another device's readings).",
            ("outcome",),
        )
        connected = metrics.gauge(
            "medmesh_devices_mqtt_connected", "1 while the MQTT subscriber holds a session."
        )
        subscriptions = metrics.counter(
            "medmesh_devices_mqtt_subscriptions_total",
            "Times the MQTT subscriber connected and subscribed (more than one: reconnects).",
        )
        merged = metrics.counter(
            "medmesh_devices_reading_chunks_merged_total",
            "SQLite: chunks of readings merged into the chunk of their hour by compaction "
            "(READING_COMPACTION_SECONDS).",
        )
        for transport in TRANSPORTS:
            full.labels(transport)
            for outcome in OUTCOMES:
                readings.labels(transport, outcome)
        for outcome in ("accepted", "refused"):
            mqtt.labels(outcome)
        return cls(
            readings,
            full,
            pending,
            delivered,
            backlog,
            lag,
            parked,
            mqtt,
            connected,
            subscriptions,
            merged,
        )
