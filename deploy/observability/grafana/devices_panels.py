"""The domain panels of the medical-device service (metrics: src/medmesh/devices/metrics.py)."""

from __future__ import annotations

from dashboard_model import RATE, Panel, ServiceDashboard

READINGS = "medmesh_devices_readings_total"

DEVICES = ServiceDashboard(
    name="devices",
    title="medical-device service",
    # Its delivery to phi has gauges of its own (Bundles waiting, lag, parked): the generic
    # outbox backlog panel above stays empty for devices.
    domain_panels=[
        Panel(
            "Readings per second by transport and outcome",
            {
                "{{transport}} {{outcome}}": "sum by (transport, outcome) "
                f"(rate({READINGS}[{RATE}]))"
            },
            unit="ops",
            description="Entries of HTTP batches and MQTT messages: stored, duplicate (a "
            "reading id the device sent before; nothing changes) or rejected.",
        ),
        Panel(
            "Rejected share of readings",
            {
                "{{transport}}": f'sum by (transport) (rate({READINGS}{{outcome="rejected"}}'
                f"[{RATE}])) / sum by (transport) (rate({READINGS}[{RATE}]))"
            },
            unit="percentunit",
            description="Unknown devices or units, implausible values, timestamps in the "
            "future: a rise after a firmware or gateway release points at it.",
            thresholds=(("green", None), ("orange", 0.05), ("red", 0.2)),
        ),
        Panel(
            "Ingest turned away (503) and readings being stored",
            {
                "full {{transport}}": "sum by (transport) "
                f"(rate(medmesh_devices_ingest_full_total[{RATE}]))",
                "pending": "sum(medmesh_devices_ingest_pending_readings)",
            },
            description="Requests and MQTT batches refused with Retry-After because "
            "MAX_PENDING_READINGS readings were being stored (alert MedmeshDevicesIngestFull).",
        ),
        Panel(
            "Observations delivered to phi per second",
            {
                "delivered": f"sum(rate(medmesh_devices_observations_delivered_total[{RATE}]))",
                "stored (assigned or not)": f'sum(rate({READINGS}{{outcome="stored"}}[{RATE}]))',
            },
            unit="ops",
            description="Readings of devices with no patient at their time are kept and not "
            "delivered, so delivered may stay below stored.",
        ),
        Panel(
            "Delivery backlog and parked Bundles",
            {
                "waiting": "max(medmesh_devices_delivery_backlog_bundles)",
                "parked": "max(medmesh_devices_delivery_parked_bundles)",
            },
            description="Every replica reads the same outbox, hence max. Parked Bundles were "
            "given up on after DELIVERY_MAX_ATTEMPTS (alert MedmeshDevicesDeliveryParked).",
        ),
        Panel(
            "Delivery lag",
            {"oldest waiting": "max(medmesh_devices_delivery_lag_seconds)"},
            unit="s",
            description="Age of the oldest message waiting for phi: how late Observations "
            "reach the record (alert MedmeshDevicesDeliveryLagging).",
            thresholds=(("green", None), ("orange", 60), ("red", 300)),
        ),
        Panel(
            "MQTT messages per second by outcome",
            {
                "{{outcome}}": "sum by (outcome) "
                f"(rate(medmesh_devices_mqtt_messages_total[{RATE}]))"
            },
            unit="ops",
            description="refused: not JSON, not on a device's topic, too many entries, or "
            "only another device's readings (logged with code and device id).",
        ),
        Panel(
            "MQTT sessions held",
            {"{{instance}}": "max by (instance) (medmesh_devices_mqtt_connected)"},
            description="1 per replica subscribed to the broker (alert "
            "MedmeshDevicesMqttDisconnected).",
        ),
        Panel(
            "Reading chunks merged per second (SQLite)",
            {"merged": f"sum(rate(medmesh_devices_reading_chunks_merged_total[{RATE}]))"},
            unit="ops",
            description="Compaction merging each past hour's chunks into one: high while "
            "devices send a reading at a time, none on PostgreSQL.",
        ),
    ],
)
