"""What the virtual Marlin does with each command it takes from its queue.

`execute` returns None when the command is done at once (the firmware then
sends `ok`), or a waiter `f(now) -> bool` that the main loop polls while the
command blocks (a move waiting for planner room, a dwell, a heat-up, homing);
while a command blocks, Marlin does not read serial input and says
`echo:busy: processing` every two seconds.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from drivers.sim.marlin import VirtualMarlin

Waiter = Callable[[float], bool]

_WORD = re.compile(r"([A-Za-z])\s*([-+]?(?:\d+\.?\d*|\.\d+))?")
HOMING_S = 3.0
KNOWN_G = {0, 1, 2, 3, 4, 10, 11, 20, 21, 28, 29, 80, 90, 91, 92}
KNOWN_M = {0, 1, 17, 18, 73, 75, 76, 77, 82, 83, 84, 104, 105, 106, 107, 108, 109, 110, 111, 112, 114,
           115, 117, 118, 140, 155, 190, 201, 203, 204, 205, 206, 220, 221, 300, 400, 410, 486, 900, 907}

CAPABILITIES = ("SERIAL_XON_XOFF:0", "BINARY_FILE_TRANSFER:0", "EEPROM:1", "AUTOREPORT_TEMP:1",
                "AUTOREPORT_POS:0", "AUTOLEVEL:0", "Z_PROBE:0", "LEVELING_DATA:0", "BUILD_PERCENT:1",
                "SOFTWARE_POWER:0", "TOGGLE_LIGHTS:0", "CASE_LIGHT_BRIGHTNESS:0", "EMERGENCY_PARSER:1",
                "HOST_ACTION_COMMANDS:1", "PROMPT_SUPPORT:0", "SDCARD:0", "REPEAT:0", "SD_WRITE:0",
                "AUTOREPORT_SD_STATUS:0", "LONG_FILENAME:0", "THERMAL_PROTECTION:1", "MOTION_MODES:0",
                "ARCS:1", "BABYSTEPPING:0", "CHAMBER_TEMPERATURE:0", "COOLER_TEMPERATURE:0",
                "MEATPACK:0")


_HEAD = re.compile(r"\s*(?:[Nn]-?\d+\s*)?([A-Za-z])(\d+)(?:\.\d+)?")


def parse_words(cmd: str) -> tuple[str, int, dict[str, float]]:
    """`G1 X5 E.2` -> ("G", 1, {"X": 5.0, "E": 0.2}); letter "" when the line does not start
    with a command word (as Marlin's parser: a fragment like `150 G1 X5` is unknown)."""
    body = cmd.split("*")[0]
    m = _HEAD.match(body)
    if not m:
        return "", -1, {}
    params = {w.upper(): float(v) if v else 0.0 for w, v in _WORD.findall(body[m.end():])}
    return m.group(1).upper(), int(m.group(2)), params


class GcodeExecutor:
    """Motion state and command handlers of the virtual Marlin."""

    def __init__(self, fw: "VirtualMarlin") -> None:
        self.fw = fw
        self.skip_ok = False
        self.executed = True
        self.reset()

    def reset(self) -> None:
        self.pos = [0.0, 0.0, 0.0, 0.0]
        self.absolute = True
        self.absolute_e = True
        self.feed_mm_s = 25.0
        self._wait_cancelled = False

    def cancel_wait(self) -> None:
        """M108 from the emergency parser: stop waiting for heaters."""
        self._wait_cancelled = True

    # ---- dispatch ---------------------------------------------------------------
    def execute(self, cmd: str, now: float) -> Waiter | None:
        """Run one command; sets `executed` False when it was unknown (did nothing)."""
        self.executed = True
        letter, code, p = parse_words(cmd)
        if letter == "G" and code in (0, 1, 2, 3):
            return self._move(p, now)
        if letter == "G":
            return self._g(code, p, now, cmd)
        if letter == "M":
            return self._m(code, p, now, cmd)
        if letter == "T" and code >= 0:
            return None
        return self._unknown(cmd, now)

    def _unknown(self, cmd: str, now: float) -> None:
        self.executed = False
        self.fw.send(f'echo:Unknown command: "{cmd}"', now)
        return None

    def _g(self, code: int, p: dict[str, float], now: float, cmd: str) -> Waiter | None:
        if code == 4:
            seconds = p.get("S", 0.0) + p.get("P", 0.0) / 1000.0
            return self._after_sync(seconds)
        if code in (28, 29):
            for i, axis in enumerate("XYZ"):
                if code == 28 and (axis in p or not any(a in p for a in "XYZ")):
                    self.pos[i] = 0.0
            return self._after_sync(HOMING_S)
        if code == 90:
            self.absolute = self.absolute_e = True
        elif code == 91:
            self.absolute = self.absolute_e = False
        elif code == 92:
            for i, axis in enumerate("XYZE"):
                if axis in p:
                    self.pos[i] = p[axis]
        elif code not in KNOWN_G:
            return self._unknown(cmd, now)
        return None

    def _m(self, code: int, p: dict[str, float], now: float, cmd: str) -> Waiter | None:
        fw, th = self.fw, self.fw.thermal
        if code == 82:
            self.absolute_e = True
        elif code == 83:
            self.absolute_e = False
        elif code in (104, 109):
            th.hotend.target = p.get("S", p.get("R", 0.0))
            if code == 109:
                return self._heat_wait(th.hotend)
        elif code in (140, 190):
            th.bed.target = p.get("S", p.get("R", 0.0))
            if code == 190:
                return self._heat_wait(th.bed)
        elif code == 105:
            fw.send("ok " + th.report(), now)
            self.skip_ok = True
        elif code == 155:
            fw.autoreport_s = p.get("S", 0.0)
            fw._report_next = now
        elif code == 110:
            fw.last_n = int(p.get("N", 0))
        elif code == 114:
            x, y, z, e = self.pos
            fw.send(f"X:{x:.2f} Y:{y:.2f} Z:{z:.2f} E:{e:.2f} Count X:{int(x * 80)} Y:{int(y * 80)} Z:{int(z * 400)}", now)
        elif code == 115:
            fw.send(f"FIRMWARE_NAME:{_firmware(fw)} SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
                    "PROTOCOL_VERSION:1.0 MACHINE_TYPE:fabedge virtual printer KINEMATICS:Cartesian "
                    "EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff", now)
            for cap in CAPABILITIES:
                fw.send("Cap:" + cap, now)
            fw.send(f"Cap:ADVANCED_OK:{int(fw.advanced_ok)}", now)
        elif code == 118:
            fw.send(cmd.split(None, 1)[1] if " " in cmd else "", now)
        elif code == 400:
            return self._after_sync(0.0)
        elif code not in KNOWN_M:
            return self._unknown(cmd, now)
        return None

    # ---- motion -------------------------------------------------------------------
    def _move(self, p: dict[str, float], now: float) -> Waiter | None:
        if "F" in p and p["F"] > 0:
            self.feed_mm_s = p["F"] / 60.0
        target = list(self.pos)
        for i, axis in enumerate("XYZ"):
            if axis in p:
                target[i] = p[axis] if self.absolute else self.pos[i] + p[axis]
        if "E" in p:
            target[3] = p["E"] if self.absolute_e else self.pos[3] + p["E"]
        delta = tuple(t - c for t, c in zip(target, self.pos))
        self.pos = target
        if not any(delta):
            return None
        planner, feed = self.fw.planner, self.feed_mm_s

        def room(now: float) -> bool:
            if planner.full():
                return False
            planner.add_move(now, delta, feed)
            return True

        return None if room(now) else room

    def _after_sync(self, machine_s: float) -> Waiter:
        """Wait until every planned move is done, then `machine_s` more (dwell, homing)."""
        fw = self.fw
        state: dict[str, float] = {}

        def waiter(now: float) -> bool:
            if fw.planner.planned:
                return False
            if "until" not in state:
                fw.planner.pause_accounting()
                state["until"] = now + machine_s / fw.time_scale
            fw._wait_poll = state["until"]
            return now >= state["until"]

        return waiter

    def _heat_wait(self, heater) -> Waiter:
        fw = self.fw
        self._wait_cancelled = False

        def waiter(now: float) -> bool:
            fw.planner.pause_accounting()
            fw._wait_poll = now + 0.05
            return self._wait_cancelled or heater.reached()

        return waiter


def _firmware(fw: "VirtualMarlin") -> str:
    from drivers.sim.marlin import FIRMWARE
    return f"{FIRMWARE} (Nov 22 2026 00:00:00)"

