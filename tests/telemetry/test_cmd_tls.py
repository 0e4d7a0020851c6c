"""The TLS variant of config/mosquitto/region.conf: client certificates whose CN is the machine
id become the MQTT username (`use_identity_as_username`), so the same ACL confines each
machine by its certificate alone. Certificates are made here with `cryptography`; the
machine side is the real `Telemetry` client configured with broker.ca_file/cert_file/key_file."""

from __future__ import annotations

import datetime
import ipaddress
import queue
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cmd_mqtt import ACL, Peer, run_as
from cmd_support import Region, machine_config
from edge.telemetry.localbroker import LocalBroker
from edge.telemetry.service import Telemetry

M = "fabedge/v1/fablab-north/prusa-01"


def _write(path: Path, key, cert) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _cert(name: str, issuer_key, issuer_name, *, ca: bool = False, ip: str | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _cert("fabedge test region CA", None, None, ca=True)
    _write(d / "ca", ca_key, ca)
    _write(d / "broker", *_cert("broker", ca_key, ca.subject, ip="127.0.0.1"))
    for name in ("prusa-01", "prusa-02", "region"):
        _write(d / name, *_cert(name, ca_key, ca.subject))
    return d


@pytest.fixture
def tls_broker(pki, tmp_path):
    conf = (f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
            "require_certificate true\nuse_identity_as_username true\n"
            f"{run_as()}allow_anonymous false\nacl_file {ACL}\n")
    b = LocalBroker(workdir=tmp_path / "broker", extra_conf=conf).start()
    yield b
    b.close()


def tls_peer(broker, pki: Path, name: str | None) -> Peer:
    p = Peer(broker)
    p.client.tls_set(ca_certs=str(pki / "ca.pem"), certfile=str(pki / f"{name}.pem") if name else None,
                     keyfile=str(pki / f"{name}.key") if name else None)
    return p


def test_certificate_name_is_the_acl_identity(tls_broker, pki):
    region = tls_peer(tls_broker, pki, "region").ok()
    region.subscribe("fabedge/v1/#")
    a = tls_peer(tls_broker, pki, "prusa-01").ok()
    assert not a.publish(f"{M}/evt/job.done", b"mine").is_failure
    assert region.wait_for(f"{M}/evt/job.done")[1] == b"mine"
    assert a.publish("fabedge/v1/fablab-north/prusa-02/evt/job.done", b"forged") == 135
    assert region.drain(0.3) == []
    region.close()
    a.close()


def test_no_client_certificate_no_connection(tls_broker, pki):
    p = tls_peer(tls_broker, pki, None)
    try:
        connected = not p.connect(timeout=3).is_failure
    except (OSError, queue.Empty):          # handshake refused, or (TLS 1.3) dropped before CONNACK
        connected = False
    p.client.loop_stop()
    assert not connected


def test_telemetry_client_over_tls_gets_its_commands(tls_broker, pki, tmp_path):
    cfg = machine_config(Region(), tmp_path / "state", broker={
        "url": f"mqtts://127.0.0.1:{tls_broker.port}", "ca_file": str(pki / "ca.pem"),
        "cert_file": str(pki / "prusa-01.pem"), "key_file": str(pki / "prusa-01.key")})
    got = []
    tele = Telemetry(cfg, tmp_path / "spool.db", on_command=lambda raw, retained: got.append(raw))
    tele.start()
    region = tls_peer(tls_broker, pki, "region").ok()
    region.subscribe(f"{M}/cmd/res")
    try:
        deadline = time.monotonic() + 10
        while not tele.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tele.connected
        region.publish(f"{M}/cmd/req", b"signed-envelope")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got == [b"signed-envelope"]
        tele.command_result({"cmd_id": "x", "status": "received"})
        assert b'"status":"received"' in region.wait_for(f"{M}/cmd/res")[1]
    finally:
        tele.stop()
        region.close()
