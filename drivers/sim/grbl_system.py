"""The virtual GRBL's `$` system commands: settings, build info, unlock, home, check mode, jog, EEPROM.

A mixin of VirtualGrbl (called from its protocol thread, under its lock), kept
apart because GRBL's `$` rules (which need Idle, which write EEPROM and stop
serial reception while they do) are a topic of their own.
"""

from __future__ import annotations

import time

from drivers.sim.grbl_gcode import Block, GcodeFault
from drivers.sim.grbl_settings import DEFAULTS, HELP, VERSION, settings_text

_IDLE_ONLY = ("$I", "$N", "$RST", "$H", "$SLP")     # '$' commands GRBL runs only when Idle/Alarm


class SystemCommands:
    """`_system(cmd, gen)` answers one normalized `$` line or raises GcodeFault(N)."""

    def _system(self, cmd: str, gen: int) -> None:
        state = self._state_name()
        idle = state in ("Idle", "Alarm")
        if cmd == "$":
            self._emit(gen, HELP, "ok")
        elif cmd == "$$":
            if state.startswith(("Run", "Hold", "Jog")):
                raise GcodeFault(8)
            self._emit(gen, *settings_text(self.settings), "ok")
        elif cmd == "$G":
            m = self.interp.modal
            self._emit(gen, f"[GC:G{m.motion} G54 G17 {'G20' if m.inches else 'G21'} "
                            f"{'G90' if m.absolute else 'G91'} G94 {m.spindle} M9 T0 F{m.feed:.0f} S{m.s:.0f}]", "ok")
        elif cmd == "$#":
            self._emit(gen, "[G54:0.000,0.000,0.000]", "[G92:{:.3f},{:.3f},{:.3f}]".format(*self.interp.modal.offset),
                       "[TLO:0.000]", "[PRB:0.000,0.000,0.000:0]", "ok")
        elif cmd == "$C":
            self.check_mode = not self.check_mode
            self._emit(gen, f"[MSG:{'Enabled' if self.check_mode else 'Disabled'}]", "ok")
        elif cmd == "$X":
            if self.alarm is not None:
                self.alarm = None
                self._emit(gen, "[MSG:Caution: Unlocked]")
            self._emit(gen, "ok")
        elif cmd.startswith("$J="):
            if self.alarm is not None:
                raise GcodeFault(9)
            if state not in ("Idle", "Jog"):
                raise GcodeFault(8)
            block = self.interp.execute(cmd[3:].encode("ascii"), jog=True)
            if block.kind != "motion":
                raise GcodeFault(16)
            if self._wait_room(block, gen):
                self.motion.push(block)
                self._emit(gen, "ok")
        elif not idle and (cmd.startswith(_IDLE_ONLY) or "=" in cmd):
            raise GcodeFault(8)
        elif cmd == "$I":
            self._emit(gen, f"[VER:{VERSION}.20190825:]", f"[OPT:V,{self.motion.blocks},{self.rx_size + 1}]", "ok")
        elif cmd == "$N":
            self._emit(gen, "$N0=", "$N1=", "ok")
        elif cmd == "$H":
            if not self.settings.get(22):
                raise GcodeFault(5)
            self._home_until = time.monotonic() + 0.5 / self.motion.time_scale
            self.motion.pos = [0.0, 0.0, 0.0]
            self.interp.modal.pos = [0.0, 0.0, 0.0]
            self.alarm = None
            self._emit(gen, "ok")
        elif cmd == "$SLP":
            self._emit(gen, "ok", "[MSG:Sleeping]")
        elif cmd.startswith("$RST="):
            if cmd[5:] not in ("$", "#", "*"):
                raise GcodeFault(3)
            self._eeprom_write(gen)
            if cmd[5:] in ("$", "*"):
                self.settings.clear()
                self.settings.update(DEFAULTS)
            self._executed(Block(cmd, "eeprom"))
            self._emit(gen, "[MSG:Restoring defaults]", "ok")
        elif cmd.startswith("$N") and "=" in cmd:
            self._eeprom_write(gen)
            self._executed(Block(cmd, "eeprom"))
            self._emit(gen, "ok")
        elif "=" in cmd:
            key, _, value = cmd[1:].partition("=")
            try:
                k, v = int(key), float(value)
            except ValueError:
                raise GcodeFault(2) from None
            if k not in self.settings:
                raise GcodeFault(3)
            if v < 0:
                raise GcodeFault(4)
            self._eeprom_write(gen)
            self.settings[k] = v
            self._executed(Block(cmd, "eeprom"))
            self._emit(gen, "ok")
        else:
            raise GcodeFault(3)
