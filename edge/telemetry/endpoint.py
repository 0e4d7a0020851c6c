"""Where and how to reach the region's broker: parsed from a URL and the [broker] config section.

Kept apart from client.py so the CLI and config checks can validate settings
without importing paho.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from edge.errors import ConfigError


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect (from a broker URL and the [broker] config section)."""
    host: str
    port: int
    tls: bool = False
    username: str = ""
    password: str | None = None
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    protocol: str = "auto"          # auto | 5 | 3.1.1
    keepalive_s: int = 30

    @classmethod
    def from_url(cls, url: str, **extra: Any) -> "Endpoint":
        """mqtt://[user[:password]@]host[:port] or mqtts://...; raises ConfigError on anything else."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"broker URL {url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError(f"broker URL {url!r}: the port is not a number in 1..65535") from None
        if parts.username and "username" not in extra:
            extra["username"] = unquote(parts.username)
        if parts.password and "password" not in extra:
            extra["password"] = unquote(parts.password)
        return cls(host=parts.hostname, port=port, tls=tls, **extra)

    @classmethod
    def from_config(cls, broker: Any, machine_id: str) -> "Endpoint":
        """From `cfg.broker`; the username defaults to the machine id, the password comes from a file."""
        password = None
        if broker.password_file:
            try:
                password = Path(broker.password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"broker.password_file = {broker.password_file!r}: cannot read: "
                                  f"{exc.strerror or exc}") from None
        for key in ("ca_file", "cert_file", "key_file"):
            value = getattr(broker, key)
            if value and not os.path.isfile(value):
                raise ConfigError(f"broker.{key} = {value!r}: no such file")
        if bool(broker.cert_file) != bool(broker.key_file):
            raise ConfigError("broker.cert_file and broker.key_file: set both (client certificate) or neither")
        return cls.from_url(broker.url, username=broker.username or machine_id, password=password,
                            ca_file=broker.ca_file, cert_file=broker.cert_file, key_file=broker.key_file,
                            protocol=broker.protocol, keepalive_s=broker.keepalive_s)
