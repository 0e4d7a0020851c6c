"""First boot: provision this Pi from `fabedge.toml` on the boot partition.

A lab flashes one image per machine and edits one file on the FAT boot
partition from any laptop. On first boot that file is validated, moved into
/etc/fabedge atomically (secrets leave the FAT partition), and the result is
written back as `fabedge-status.txt`, so a mistake can be read on the same
laptop. A bad file installs nothing: the old configuration (if any) stays, the
boot file stays for fixing, and the status file names the key and the reason.

Extra keys accepted only in the boot file (moved out of it):
  [broker] password = "..."   -> /etc/fabedge/broker-password (0600), password_file set
TLS files placed next to it are moved too: fabedge-ca.pem, fabedge-client.pem,
fabedge-client.key -> /etc/fabedge/{ca.pem,client.pem,client.key}.
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edge import config as config_mod
from edge.atomicfile import write_atomic
from edge.errors import ConfigError, FabedgeError

BOOT_FILE = "fabedge.toml"
STATUS_FILE = "fabedge-status.txt"
BOOT_CANDIDATES = ("/boot/firmware", "/boot")
TLS_FILES = {"fabedge-ca.pem": ("ca.pem", "ca_file"),
             "fabedge-client.pem": ("client.pem", "cert_file"),
             "fabedge-client.key": ("client.key", "key_file")}


@dataclass
class Result:
    ok: bool
    message: str
    machine_id: str = ""


def find_boot_dir(hint: str = "auto") -> Path:
    """The boot partition holding fabedge.toml (Bookworm: /boot/firmware, older: /boot)."""
    if hint != "auto":
        return Path(hint)
    for candidate in BOOT_CANDIDATES:
        if (Path(candidate) / BOOT_FILE).exists():
            return Path(candidate)
    raise FabedgeError(f"no {BOOT_FILE} on the boot partition ({' or '.join(BOOT_CANDIDATES)})")


def pi_serial(cpuinfo: Path = Path("/proc/cpuinfo"),
              device_tree: Path = Path("/proc/device-tree/serial-number")) -> str:
    """The Pi's serial number (the default machine id), or '' off a Pi."""
    try:
        serial = device_tree.read_bytes().rstrip(b"\0\n").decode("ascii", "replace").strip()
        if serial:
            return serial.lstrip("0") or serial
    except OSError:
        pass
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("serial"):
                return line.split(":", 1)[1].strip().lstrip("0")
    except OSError:
        pass
    return ""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dump_toml(data: dict) -> str:
    """Write the config tables back as TOML (tables of scalars/lists, arrays of tables)."""
    out: list[str] = []
    for section, body in data.items():
        if not isinstance(body, dict):
            out.append(f"{section} = {_toml_value(body)}")
            continue
        scalars = {k: v for k, v in body.items() if not (isinstance(v, list) and v and isinstance(v[0], dict))}
        out.append(f"\n[{section}]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
        for k, v in body.items():
            if k not in scalars:
                for item in v:
                    out.append(f"\n[[{section}.{k}]]")
                    out.extend(f"{ik} = {_toml_value(iv)}" for ik, iv in item.items())
    return "\n".join(out).lstrip() + "\n"


def provision(boot_dir: Path, etc_dir: Path, state_dir: Path, serial: str | None = None) -> Result:
    """Validate the boot file and install it; always writes the status file. Never raises for bad input."""
    boot_file = boot_dir / BOOT_FILE
    try:
        result = _provision(boot_file, etc_dir, state_dir, pi_serial() if serial is None else serial)
    except (ConfigError, FabedgeError) as exc:
        result = Result(False, str(exc))
    _write_status(boot_dir, result)
    return result


def _provision(boot_file: Path, etc_dir: Path, state_dir: Path, serial: str) -> Result:
    try:
        data = tomllib.loads(boot_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FabedgeError(f"{boot_file}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{boot_file}: not valid TOML: {exc}") from None
    broker = data.setdefault("broker", {}) if isinstance(data.get("broker", {}), dict) else None
    if broker is None:
        raise ConfigError(f"{boot_file}: [broker] must be a table")
    password = broker.pop("password", None)
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{boot_file}: broker.password must be a string")
    machine = data.setdefault("machine", {})
    if isinstance(machine, dict) and not machine.get("id"):
        if not serial:
            raise ConfigError(f"{boot_file}: machine.id is missing and this is not a Pi with a serial number")
        machine["id"] = f"pi-{serial}"
    boot_dir = boot_file.parent
    tls = {src: dest for src, dest in TLS_FILES.items() if (boot_dir / src).exists()}
    for src, (dest, key) in tls.items():
        broker[key] = str(etc_dir / dest)
    if password is not None:
        broker["password_file"] = str(etc_dir / "broker-password")
    data.setdefault("paths", {}).setdefault("state_dir", str(state_dir))
    cfg = config_mod.from_dict(data, source=str(boot_file))  # every check before anything is written

    # Everything valid: install secrets first, the config last (it is the commit point).
    etc_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for src, (dest, _key) in tls.items():
        write_atomic(etc_dir / dest, (boot_dir / src).read_bytes(), 0o600 if dest.endswith(".key") else 0o644)
    if password is not None:
        write_atomic(etc_dir / "broker-password", password.encode() + b"\n", 0o600)
    write_atomic(etc_dir / "fabedge.toml", dump_toml(data).encode(), 0o640)
    config_mod.load(etc_dir / "fabedge.toml")  # what was written reads back the same way
    _hand_to_service_user([etc_dir / "fabedge.toml", etc_dir / "broker-password"]
                          + [etc_dir / dest for dest, _key in tls.values()])
    # Secrets leave the FAT partition only once they are safely installed.
    for src in tls:
        (boot_dir / src).unlink()
    boot_file.unlink()
    m = cfg.machine
    return Result(True, f"installed {m.kind} '{m.id}' at site '{m.site}', broker {cfg.broker.url}", m.id)


def _hand_to_service_user(paths: list[Path], user: str = "fabedge") -> None:
    """As root, let the service's group read its config and secrets (they stay root-owned)."""
    if os.geteuid() != 0:
        return
    import grp

    try:
        gid = grp.getgrnam(user).gr_gid
    except KeyError:
        return
    for path in paths:
        if path.exists():
            os.chown(path, 0, gid)
            os.chmod(path, 0o640)


def _write_status(boot_dir: Path, result: Result) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if result.ok:
        text = f"fabedge first boot: OK\n{stamp}\n{result.message}\n"
    else:
        text = (f"fabedge first boot: FAILED\n{stamp}\n{result.message}\n\n"
                f"Fix {BOOT_FILE} on this partition and restart the Pi; nothing was installed.\n")
    try:
        write_atomic(boot_dir / STATUS_FILE, text.encode())
    except OSError:
        pass  # a read-only boot partition must not hide the result from the journal


def warm_numba_cache(cache_dir: Path) -> None:
    """Compile every toolpath kernel into the service's cache (staged images warm here)."""
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    from edge.toolpath import warm_cache

    warm_cache()
