"""The connection itself: TLS with client certificates and a password, and MQTT 5 -> 3.1.1 fallback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import subprocess
import threading
import time

import pytest
from conftest import Recorder, make_cfg, start_broker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.errors import ConfigError
from edge.telemetry.client import Endpoint
from edge.telemetry.localbroker import free_port
from edge.telemetry.service import Telemetry


def _cert(name: str, issuer_key, issuer_name, *, ca: bool = False, ip: str | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(path, key, cert):
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()))
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_tls_with_client_certificate_and_password_file(tmp_path):
    ca_key, ca = _cert("fabedge test CA", None, None, ca=True)
    _write(tmp_path / "ca", ca_key, ca)
    _write(tmp_path / "server", *_cert("broker", ca_key, ca.subject, ip="127.0.0.1"))
    _write(tmp_path / "mk3-1", *_cert("mk3-1", ca_key, ca.subject))
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "mk3-1", "s3cret"], check=True)
    conf = "\n".join([f"cafile {tmp_path / 'ca.pem'}", f"certfile {tmp_path / 'server.pem'}",
                      f"keyfile {tmp_path / 'server.key'}", "require_certificate true",
                      f"password_file {passwd}", "allow_anonymous false"])
    broker = start_broker(tmp_path / "broker", conf)
    try:
        url = f"mqtts://127.0.0.1:{broker.port}"
        (tmp_path / "pw").write_text("s3cret\n")
        tls = {"ca_file": str(tmp_path / "ca.pem"), "cert_file": str(tmp_path / "mk3-1.pem"),
               "key_file": str(tmp_path / "mk3-1.key"), "password_file": str(tmp_path / "pw")}
        t = Telemetry(make_cfg(url, **tls), tmp_path / "spool.db", on_command=lambda p, r: None)
        t.start()
        t.event("job.done", {"job_id": "j1"})
        deadline = time.monotonic() + 15
        while (len(t.spool) or not t.connected) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert t.connected and len(t.spool) == 0
        t.stop()
        # a wrong password never connects (and the event stays spooled)
        (tmp_path / "pw").write_text("wrong\n")
        bad = Telemetry(make_cfg(url, **tls), tmp_path / "spool2.db", on_command=lambda p, r: None)
        bad.start()
        bad.event("job.done", {"job_id": "j2"})
        time.sleep(2.0)
        assert not bad.connected and len(bad.spool) == 1
        bad.stop()
    finally:
        broker.close()


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="password_file"):
        Endpoint.from_config(make_cfg("mqtt://127.0.0.1:1", password_file=str(tmp_path / "none")).broker, "m")
    with pytest.raises(ConfigError, match="ca_file"):
        Endpoint.from_config(make_cfg("mqtts://127.0.0.1:1", ca_file=str(tmp_path / "none")).broker, "m")
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match="key_file"):
        Endpoint.from_config(make_cfg("mqtts://127.0.0.1:1", cert_file=str(tmp_path / "c.pem")).broker, "m")
    with pytest.raises(ConfigError, match="port"):
        Endpoint.from_url("mqtt://host:99999")
    e = Endpoint.from_config(make_cfg("mqtts://broker.example").broker, "mk3-1")
    assert (e.host, e.port, e.tls, e.username) == ("broker.example", 8883, True, "mk3-1")


class V311OnlyFront:
    """A TCP front for the real mosquitto that answers an MQTT 5 CONNECT the way a 3.1.1-only broker
    does (CONNACK 'unacceptable protocol version') and passes everything else through."""

    def __init__(self, upstream_port: int) -> None:
        self.port, self.upstream = free_port(), upstream_port
        self.refused_v5 = 0
        self.srv = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        first = conn.recv(65536)
        i = 1
        while first[i] & 0x80:      # remaining-length varint
            i += 1
        level = first[i + 1 + 2 + 4]  # after the length: 2-byte name length, "MQTT", protocol level
        if level == 5:
            self.refused_v5 += 1
            conn.sendall(b"\x20\x02\x00\x01")
            conn.close()
            return
        up = socket.create_connection(("127.0.0.1", self.upstream))
        up.sendall(first)
        for a, b in ((conn, up), (up, conn)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.srv.close()


def test_auto_protocol_falls_back_to_311_on_a_broker_without_v5(broker, tmp_path):
    front = V311OnlyFront(broker.port)
    rec = Recorder(broker.url)
    try:
        t = Telemetry(make_cfg(f"mqtt://127.0.0.1:{front.port}"), tmp_path / "spool.db",
                      on_command=lambda p, r: None, backoff_max_s=0.5)
        t.start()
        eid = t.event("job.done", {"job_id": "j1"})
        assert rec.wait(lambda: any(e["id"] == eid for e in rec.on("/evt/job.done")), 15)
        assert front.refused_v5 >= 1 and t.link.protocol_in_use == "3.1.1"
        t.stop()
    finally:
        rec.stop()
        front.close()


def test_probe_reports_the_protocol_or_a_clear_failure(broker, tmp_path):
    from edge.errors import FabedgeError
    from edge.telemetry.client import probe
    assert probe(make_cfg(broker.url)) == "5"
    assert probe(make_cfg(broker.url, protocol="3.1.1")) == "3.1.1"
    with pytest.raises(FabedgeError, match="cannot connect"):
        probe(make_cfg(f"mqtt://127.0.0.1:{free_port()}"), timeout=2)
    front = V311OnlyFront(broker.port)
    try:
        assert probe(make_cfg(f"mqtt://127.0.0.1:{front.port}")) == "3.1.1"
    finally:
        front.close()


def test_a_message_the_broker_refuses_is_dropped_and_never_blocks_the_spool(tmp_path):
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "mk3-1", "pw"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "region", "pw"], check=True)
    acl.write_text("user region\ntopic read fabedge/#\n\n"
                   "user mk3-1\ntopic readwrite fabedge/v1/lab-a/mk3-1/status\n"
                   "topic write fabedge/v1/lab-a/mk3-1/evt/job.done\ntopic read fabedge/v1/lab-a/mk3-1/cmd/req\n")
    broker = start_broker(tmp_path / "broker", f"password_file {passwd}\nacl_file {acl}\nallow_anonymous false")
    (tmp_path / "pw").write_text("pw")
    from edge.telemetry.client import Watcher
    got = []
    region = Watcher(Endpoint.from_url(broker.url, username="region", password="pw"), ["fabedge/#"],
                     lambda t, p, r: got.append(t)).start()
    try:
        t = Telemetry(make_cfg(broker.url, password_file=str(tmp_path / "pw")), tmp_path / "spool.db",
                      on_command=lambda p, r: None)
        t.start()
        t.event("error", {"message": "not allowed by the ACL"})
        t.event("job.done", {"job_id": "j1"})
        deadline = time.monotonic() + 60
        while "fabedge/v1/lab-a/mk3-1/evt/job.done" not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "fabedge/v1/lab-a/mk3-1/evt/job.done" in got        # the refused event did not block it
        assert "fabedge/v1/lab-a/mk3-1/evt/error" not in got
        while t.spool.read(0, 10) and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = t.stats()
        # mosquitto drops the connection over the denied message: it is set aside, not lost
        # (a broker that answers PUBACK 0x87 instead gets it counted as refused)
        assert stats["quarantined"] + stats["refused"] == 1 and t.spool.read(0, 10) == []
        assert t.connected
        t.stop()
    finally:
        region.stop()
        broker.close()
