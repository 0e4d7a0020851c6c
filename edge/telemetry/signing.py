"""Ed25519 signatures over region commands, and the key files that hold them.

A command is signed over its *canonical JSON*: every field but `sig`, keys
sorted, no whitespace, UTF-8 (non-ASCII characters kept, not escaped). The
verifier re-serialises the parsed envelope the same way, so any change to any
signed field (one byte of the args, the audience, the expiry) breaks the
signature. Keys are raw Ed25519: the public key travels as base64 of its 32
bytes (the `[[trust.keys]]` entry in fabedge.toml), the private key stays in a
PEM (PKCS#8) file readable only by its owner, named `<key id>.key`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.atomicfile import write_atomic  # key files; also used by the keys CLI
from edge.errors import FabedgeError

ENVELOPE_VERSION = 1
SIG_FIELD = "sig"


class KeyFileError(FabedgeError):
    """A key file or a configured public key cannot be used (names the file or key id)."""


def canonical_json(envelope: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed: all fields except `sig`, sorted, compact, UTF-8.

    Raises ValueError for values JSON cannot carry exactly (NaN, infinities,
    lone surrogates): such an envelope can never be signed or verified.
    """
    body = {k: v for k, v in envelope.items() if k != SIG_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not encodable as UTF-8: {exc.reason}") from None


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Base64 of the raw 32-byte public key (the form fabedge.toml's trust store holds)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(b64: str, key_id: str = "?") -> Ed25519PublicKey:
    """Parse a trust-store public key; KeyFileError names the key id when it is not 32 raw bytes."""
    try:
        raw = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"trust key {key_id!r}: public_key is not valid base64") from None
    if len(raw) != 32:
        raise KeyFileError(f"trust key {key_id!r}: public_key must be 32 raw bytes in base64, got {len(raw)} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def save_private_key(key: Ed25519PrivateKey, path: str | Path) -> Path:
    """Write the private key as PEM (PKCS#8), mode 0600, atomically; never overwrites a key."""
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a private key")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_atomic(path, pem, mode=0o600)
    return path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read a private key file: PEM (PKCS#8) as `keys gen` writes, or base64 of the raw 32-byte seed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the private key: {exc.strerror or exc}") from None
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: is a {type(key).__name__}, not an Ed25519 private key")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: neither PEM nor base64 of a 32-byte Ed25519 seed") from None
    if len(raw) != 32:
        raise KeyFileError(f"{path}: base64 key must decode to 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def sign(envelope: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of the envelope with `sig` set to base64 of the Ed25519 signature."""
    signed = {k: v for k, v in envelope.items() if k != SIG_FIELD}
    signed[SIG_FIELD] = base64.b64encode(key.sign(canonical_json(signed))).decode("ascii")
    return signed


def verify(envelope: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    """True only if `sig` is a valid signature of the canonical JSON by this key."""
    sig = envelope.get(SIG_FIELD)
    if not isinstance(sig, str):
        return False
    try:
        raw = base64.b64decode(sig, validate=True)
        if base64.b64encode(raw).decode("ascii") != sig:
            return False    # non-canonical base64 (stray padding bits): one signature, one spelling
        key.verify(raw, canonical_json(envelope))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def make_envelope(key: Ed25519PrivateKey, key_id: str, audience: str, op: str, args: Mapping[str, Any],
                  ttl_s: float = 300, cmd_id: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Build and sign a command for `audience` ("<site>/<machine>"), valid from now for ttl_s seconds."""
    issued = int(time.time() if now is None else now)
    envelope = {"v": ENVELOPE_VERSION, "id": cmd_id or uuid.uuid4().hex, "key": key_id, "aud": audience,
                "iat": issued, "exp": issued + max(1, int(ttl_s)), "op": op, "args": dict(args)}
    return sign(envelope, key)
