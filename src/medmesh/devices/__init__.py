"""medical-device service: device registry, telemetry ingest over HTTP and MQTT, FHIR Observations."""
