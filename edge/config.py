"""The machine's TOML configuration, loaded into typed sections and validated.

One file describes one Pi and its machine. Every key has a type, a default and
(where it matters) a set of allowed values or a range; an unknown key, a wrong
type or a value out of range is a ConfigError naming the file, the key, the
value and what is allowed, so a lab manager can fix it without reading code.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ConfigError


def _spec(default: Any = dataclasses.MISSING, *, choices: tuple | None = None,
          lo: float | None = None, hi: float | None = None, length: int | None = None,
          doc: str = "") -> Any:
    """A field with validation metadata; `length` fixes the size of a list."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "length": length, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class MachineSection:
    """Who this machine is in the region."""
    id: str = _spec("machine-1", doc="machine id: MQTT username and TLS certificate name")
    site: str = _spec("lab", doc="site (fab lab) id")
    kind: str = _spec("printer", choices=("printer", "laser"))
    name: str = _spec("", doc="human name shown to operators")
    profile: str = _spec("", doc="machine profile the region matches designs against, e.g. prusa-mk3s")


@dataclass(frozen=True)
class SerialSection:
    """How the controller is reached, and the size of its buffers."""
    port: str = _spec("/dev/fabedge/machine")
    baud: int = _spec(115200, choices=(9600, 19200, 38400, 57600, 115200, 230400, 250000, 500000, 1000000))
    protocol: str = _spec("marlin", choices=("marlin", "grbl"))
    rx_buffer: int = _spec(128, lo=16, hi=65536, doc="controller receive buffer, bytes (Marlin RX_BUFFER_SIZE, GRBL RX)")
    command_slots: int = _spec(4, lo=1, hi=64, doc="Marlin BUFSIZE: commands queued in the firmware")
    timeout_s: float = _spec(10.0, lo=0.5, hi=600.0, doc="silence before the firmware is probed")
    line_error_policy: str = _spec("stop", choices=("stop", "resend"),
                                   doc="GRBL error:N on a line: stop the job (safe), or re-send it once "
                                       "AFTER the lines GRBL already queued (out of order)")
    status_hz: float = _spec(5.0, lo=0.2, hi=20.0, doc="GRBL status poll rate")


@dataclass(frozen=True)
class VolumeSection:
    """Work volume in machine millimetres: [min, max] per axis."""
    x: list[float] = _spec([0.0, 250.0], length=2)
    y: list[float] = _spec([0.0, 210.0], length=2)
    z: list[float] = _spec([0.0, 210.0], length=2)


DEFAULT_FORBIDDEN = ["M500", "M502", "M997", "M999", "M303", "M928", "M30"]


@dataclass(frozen=True)
class LimitsSection:
    """What a job may ask of the machine; more is an error before queueing."""
    max_nozzle_c: float = _spec(280.0, lo=0, hi=500)
    max_bed_c: float = _spec(110.0, lo=0, hi=200)
    max_laser_power: float = _spec(1000.0, lo=0, hi=100000, doc="largest S a laser job may use")
    max_line_length: int = _spec(96, lo=16, hi=4096, doc="longest line the firmware accepts (Marlin MAX_CMD_SIZE)")
    forbidden: list[str] = _spec(list(DEFAULT_FORBIDDEN), doc="commands a job must never contain")
    line_width_mm: float = _spec(0.45, lo=0.05, hi=5.0, doc="extrusion width when a file does not imply one")
    filament_diameter_mm: float = _spec(1.75, choices=(1.75, 2.85, 3.0))


@dataclass(frozen=True)
class MotionSection:
    """Motion limits as the firmware has them (the planner reproduces its timing).

    Per-axis lists are [X, Y, Z, E] for printers; for GRBL the fourth entry is ignored.
    """
    planner: str = _spec("marlin", choices=("marlin", "grbl"))
    max_feedrate: list[float] = _spec([200.0, 200.0, 12.0, 120.0], length=4, lo=0.001, doc="mm/s")
    max_acceleration: list[float] = _spec([1000.0, 1000.0, 200.0, 5000.0], length=4, lo=0.001, doc="mm/s^2")
    acceleration: float = _spec(1000.0, lo=0.001, doc="printing acceleration (M204 P / S), mm/s^2")
    retract_acceleration: float = _spec(1000.0, lo=0.001, doc="M204 R, mm/s^2")
    travel_acceleration: float = _spec(1000.0, lo=0.001, doc="M204 T, mm/s^2")
    junction_deviation: float = _spec(0.013, lo=0.0, hi=1.0, doc="mm; 0 selects classic jerk")
    jerk: list[float] = _spec([8.0, 8.0, 0.4, 4.5], length=4, lo=0.0, doc="classic jerk, mm/s (used when junction_deviation = 0)")
    min_feedrate: float = _spec(0.0, lo=0.0, doc="mm/s")
    min_travel_feedrate: float = _spec(0.0, lo=0.0, doc="mm/s")
    min_segment_time_us: int = _spec(20000, lo=0, doc="Marlin MIN_SEGMENT_TIME / M205 B")
    block_buffer_size: int = _spec(16, lo=1, hi=256, doc="planner blocks (Marlin BLOCK_BUFFER_SIZE, GRBL 15)")


@dataclass(frozen=True)
class BrokerSection:
    """The region's MQTT broker and the on-disk spool that covers outages."""
    url: str = _spec("mqtt://127.0.0.1:1883", doc="mqtt://host:port or mqtts://host:port")
    username: str = _spec("", doc="defaults to the machine id")
    password_file: str = _spec("", doc="file holding the password (kept out of this file)")
    ca_file: str = _spec("")
    cert_file: str = _spec("")
    key_file: str = _spec("")
    protocol: str = _spec("auto", choices=("auto", "5", "3.1.1"))
    keepalive_s: int = _spec(30, lo=5, hi=3600)
    will_delay_s: int = _spec(30, lo=0, hi=3600, doc="MQTT v5 will delay: a reconnect inside it never shows lost")
    telemetry_interval_s: float = _spec(5.0, lo=0.1, hi=3600)
    heartbeat_s: float = _spec(60.0, lo=1, hi=3600)
    spool_max_mb: float = _spec(64.0, lo=1, hi=4096)
    spool_max_age_h: float = _spec(168.0, lo=1, hi=24 * 365)
    max_payload_kb: int = _spec(256, lo=1, hi=262144, doc="largest command payload accepted")


@dataclass(frozen=True)
class TrustKey:
    """A region key allowed to sign commands."""
    id: str = _spec()
    public_key: str = _spec(doc="Ed25519 public key, base64 (raw 32 bytes)")
    operations: list[str] = _spec(["*"], doc="operations this key may sign, or '*'")


@dataclass(frozen=True)
class TrustSection:
    """Region keys allowed to command this machine."""
    keys: list[TrustKey] = _spec([])
    max_clock_skew_s: float = _spec(300.0, lo=0, hi=86400)


@dataclass(frozen=True)
class PanelSection:
    """The operator panel: BCM pin numbers (0 = not fitted) and hold times."""
    pin_factory: str = _spec("auto", choices=("auto", "mock", "lgpio", "rpigpio", "pigpio", "native"))
    start: int = _spec(17, lo=0, hi=27)
    pause: int = _spec(27, lo=0, hi=27)
    stop: int = _spec(22, lo=0, hi=27)
    bed_clear: int = _spec(23, lo=0, hi=27)
    reject: int = _spec(24, lo=0, hi=27)
    led_green: int = _spec(5, lo=0, hi=27)
    led_amber: int = _spec(6, lo=0, hi=27)
    led_red: int = _spec(13, lo=0, hi=27)
    led_blue: int = _spec(19, lo=0, hi=27)
    stop_cancel_hold_s: float = _spec(2.0, lo=0.5, hi=10)
    bed_clear_hold_s: float = _spec(1.0, lo=0.2, hi=10)
    reject_hold_s: float = _spec(3.0, lo=0.5, hi=20, doc="BED CLEAR held this long = rejected (without a REJECT button)")
    override_hold_s: float = _spec(5.0, lo=1, hi=30, doc="START held this long overrides an occupied-bed verdict")


@dataclass(frozen=True)
class CameraSection:
    """Where frames come from and how the bed is registered."""
    source: str = _spec("none", doc="none | v4l2:/dev/video0 | picamera2 | folder:/path")
    width: int = _spec(1280, lo=160, hi=4096)
    height: int = _spec(720, lo=120, hi=4096)
    aruco_dictionary: str = _spec("DICT_4X4_50")
    marker_size_mm: float = _spec(20.0, lo=1, hi=200)
    markers: list[list[float]] = _spec([[0, -15.0, -15.0], [1, 265.0, -15.0], [2, 265.0, 225.0], [3, -15.0, 225.0]],
                                       doc="[id, x_mm, y_mm] of each marker's centre")
    mm_per_px: float = _spec(0.5, lo=0.05, hi=5)
    reference: str = _spec("", doc="empty-bed reference image; default <state_dir>/bed-reference.png")


@dataclass(frozen=True)
class InspectionSection:
    bed_clear: bool = _spec(True)
    first_layer: bool = _spec(True)
    cut: bool = _spec(True)
    first_layer_fail_action: str = _spec("pause", choices=("pause", "alert"))


@dataclass(frozen=True)
class StreamSection:
    """Pause/park behaviour of the host."""
    park_gcode: list[str] = _spec(["G91", "G1 Z5 F600", "G90"])
    restore_gcode: list[str] = _spec(["G91", "G1 Z-5 F600", "G90"])
    cancel_gcode: list[str] = _spec(["M104 S0", "M140 S0", "M107"],
                                    doc="sent after a cancel (after M108 ends any heat wait): heaters off, no moves")


@dataclass(frozen=True)
class PathsSection:
    state_dir: str = _spec("/var/lib/fabedge")
    cache_dir: str = _spec("/var/cache/fabedge", doc="numba cache (warmed at install)")
    watch_dir: str = _spec("", doc="a folder (USB stick, share) whose .gcode files become jobs")


@dataclass(frozen=True)
class Config:
    machine: MachineSection = field(default_factory=MachineSection)
    serial: SerialSection = field(default_factory=SerialSection)
    volume: VolumeSection = field(default_factory=VolumeSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    motion: MotionSection = field(default_factory=MotionSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    trust: TrustSection = field(default_factory=TrustSection)
    panel: PanelSection = field(default_factory=PanelSection)
    camera: CameraSection = field(default_factory=CameraSection)
    inspection: InspectionSection = field(default_factory=InspectionSection)
    stream: StreamSection = field(default_factory=StreamSection)
    paths: PathsSection = field(default_factory=PathsSection)
    source: str = field(default="<defaults>", compare=False)

    def replace(self, **sections: Any) -> "Config":
        """A copy with some sections replaced; values given as dicts are merged and validated."""
        out = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict):
                merged = {**dataclasses.asdict(current), **value}
                value = _build(type(current), merged, name, self.source)
            out[name] = value
        return dataclasses.replace(self, **out)


def load(path: str | Path) -> Config:
    """Read and validate a TOML config; raises ConfigError naming file, key and reason."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return loads(text, source=str(path))


def loads(text: str, source: str = "<string>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return from_dict(data, source)


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    cfg = _build(Config, {**data, "source": source}, "", source)
    _cross_check(cfg)
    return cfg


def _cross_check(cfg: Config) -> None:
    src = cfg.source
    for axis in ("x", "y", "z"):
        lo, hi = getattr(cfg.volume, axis)
        if not lo < hi:
            raise ConfigError(f"{src}: volume.{axis} = [{lo}, {hi}]: the minimum must be below the maximum")
    if cfg.machine.kind == "laser" and cfg.serial.protocol != "grbl":
        raise ConfigError(f"{src}: serial.protocol = {cfg.serial.protocol!r}: a laser (machine.kind = 'laser') "
                          "is driven over 'grbl'")
    if cfg.machine.kind == "printer" and cfg.serial.protocol != "marlin":
        raise ConfigError(f"{src}: serial.protocol = {cfg.serial.protocol!r}: a printer (machine.kind = 'printer') "
                          "is driven over 'marlin'")
    if not cfg.machine.id or any(c in cfg.machine.id for c in "/+#") or not cfg.machine.id.isascii():
        raise ConfigError(f"{src}: machine.id = {cfg.machine.id!r}: use ASCII letters, digits, '-' or '_' "
                          "(it is an MQTT topic level and username)")
    if not cfg.machine.site or any(c in cfg.machine.site for c in "/+#"):
        raise ConfigError(f"{src}: machine.site = {cfg.machine.site!r}: must be non-empty without '/', '+' or '#'")
    if not cfg.broker.url.startswith(("mqtt://", "mqtts://")):
        raise ConfigError(f"{src}: broker.url = {cfg.broker.url!r}: must start with mqtt:// or mqtts://")
    for cmd in cfg.limits.forbidden:
        if not (len(cmd) >= 2 and cmd[0].upper() in "GMT$" ):
            raise ConfigError(f"{src}: limits.forbidden contains {cmd!r}: expected commands like 'M500' or '$RST'")
    if cfg.panel.start and not cfg.panel.stop:
        raise ConfigError(f"{src}: panel.stop = 0: a machine that START can start needs a STOP button "
                          "(give its BCM pin)")
    pins = [(n, getattr(cfg.panel, n)) for n in ("start", "pause", "stop", "bed_clear", "reject", "led_green",
                                                  "led_amber", "led_red", "led_blue") if getattr(cfg.panel, n)]
    for i, (name, pin) in enumerate(pins):
        other = next((n for n, p in pins[:i] if p == pin), None)
        if other:
            raise ConfigError(f"{src}: panel.{name} = {pin}: pin {pin} is already panel.{other}")
    _check_cancel_gcode(cfg)
    for i, m in enumerate(cfg.camera.markers):
        if len(m) != 3:
            raise ConfigError(f"{src}: camera.markers[{i}] = {m!r}: expected [id, x_mm, y_mm]")


# A cancel may come from afar with nobody at the machine: its G-code must not move, home, heat or wait.
_CANCEL_REFUSED = {"G0", "G1", "G2", "G3", "G4", "G5", "G28", "G29", "G30", "M0", "M1", "M109", "M190", "M191", "M112",
                   "M303", "M600"}


def _check_cancel_gcode(cfg: Config) -> None:
    """stream.cancel_gcode: plain commands, none forbidden or moving, and hotend and bed switched off."""
    src, seen = cfg.source, set()
    forbidden = {c.strip().upper() for c in cfg.limits.forbidden}
    for i, line in enumerate(cfg.stream.cancel_gcode):
        where = f"{src}: stream.cancel_gcode[{i}] = {line!r}"
        words = line.strip().upper().split()
        if not words or any(c in line for c in ";*\r\n") or words[0][0] not in "GMT" or words[0].startswith("N"):
            raise ConfigError(f"{where}: expected one plain G-code command such as 'M104 S0'")
        digits = "".join(itertools.takewhile(str.isdigit, words[0][1:]))
        if not digits:
            raise ConfigError(f"{where}: expected one plain G-code command such as 'M104 S0'")
        head = words[0][0] + str(int(digits))                  # G01X5 -> G1
        if head in forbidden:
            raise ConfigError(f"{where}: {head} is a forbidden command on this machine (limits.forbidden)")
        if head in _CANCEL_REFUSED:
            raise ConfigError(f"{where}: {head} moves, homes, waits or halts; a cancel must leave the machine still")
        if head in ("M104", "M140", "M141") and any(w[0] in "SR" and _number(w[1:]) != 0.0 for w in words[1:]):
            raise ConfigError(f"{where}: a cancel must switch heaters off (S0), not heat")
        if head in ("M104", "M140"):
            seen.add(head)
    if {"M104", "M140"} - seen:
        raise ConfigError(f"{src}: stream.cancel_gcode = {list(cfg.stream.cancel_gcode)!r}: must switch the "
                          "hotend and the bed off (M104 S0 and M140 S0)")


def _number(text: str) -> float | None:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [{prefix}] must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        allowed = ", ".join(n for n in fields if n != "source")
        raise ConfigError(f"{source}: unknown key '{where}' (allowed here: {allowed})")
    kwargs = {}
    for name, value in data.items():
        if name == "source" and cls is Config:
            kwargs[name] = value
            continue
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(hints[name], value, fields[name].metadata, key, source)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key (no default) is missing
        missing = [n for n, f in fields.items() if n not in kwargs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        raise ConfigError(f"{source}: [{prefix}] is missing required key '{missing[0] if missing else exc}'") from None


def _convert(tp: Any, value: Any, meta: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    bad = f"{source}: {key} = {value!r}"
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, source)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{bad}: expected a list of {_type_name(item_tp)}")
        length = meta.get("length") if meta else None
        if length is not None and len(value) != length:
            raise ConfigError(f"{bad}: expected a list of {length} values")
        return [_convert(item_tp, v, meta if not dataclasses.is_dataclass(item_tp) and typing.get_origin(item_tp) is None
                         else {}, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{bad}: expected true or false")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{bad}: expected a whole number")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{bad}: expected a number")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{bad}: expected a string")
    meta = meta or {}
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{bad}: allowed values are {', '.join(repr(c) for c in choices)}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo:
            raise ConfigError(f"{bad}: must be at least {lo}")
        if hi is not None and value > hi:
            raise ConfigError(f"{bad}: must be at most {hi}")
    return value


def default() -> Config:
    """The built-in configuration (a generic Marlin printer), used when no file is given."""
    return Config()


def demo_printer(state_dir: str) -> Config:
    """Configuration of the built-in virtual printer used by `fabedge demo` and the tests."""
    return default().replace(paths={"state_dir": state_dir, "cache_dir": str(Path(state_dir) / "numba")},
                             panel={"pin_factory": "mock"})
