"""MQTT telemetry: client, disk spool, topic/payload schema, signed commands."""
