"""Marlin protocol text (framing, reply classification) and the window's bookkeeping, without a port."""

from __future__ import annotations

from drivers import marlin_protocol as proto
from drivers.marlin_window import Entry, Window


def test_marlin_frame_and_checksum_match_marlins_xor():
    framed = proto.frame(12, b"G1 X5")
    body, _, cs = framed.rstrip(b"\n").rpartition(b"*")
    assert body == b"N12 G1 X5" and int(cs) == proto.checksum(body) and framed.endswith(b"\n")
    assert proto.frame(0, b"M110 N0") == b"N0 M110 N0*125\n"


def test_marlin_classify_replies():
    ok = proto.classify("ok N41 P15 B3")
    assert (ok.kind, ok.n, ok.planner_free, ok.slots_free) == (proto.OK, 41, 15, 3)
    assert proto.classify("ok").kind == proto.OK and proto.classify("ok").n is None
    temps = proto.classify("ok T:210.1 /210.0 B:60.0 /60.0 @:0 B@:0")
    assert temps.temps == {"T0": (210.1, 210.0), "B": (60.0, 60.0)} and temps.n is None
    assert proto.classify("Resend: 7").n == 7 and proto.classify("rs N7").n == 7
    assert proto.classify("Error:checksum mismatch, Last Line: 6").kind == proto.LINE_ERROR
    assert proto.classify("Error:Thermal Runaway, system stopped! Heater_ID: 0").kind == proto.FATAL
    assert proto.classify("Error:Printer halted. kill() called!").kind == proto.FATAL
    assert proto.classify("echo:busy: processing").kind == proto.BUSY
    assert proto.classify("start").kind == proto.START
    assert proto.classify("ok N59 P1start").kind == proto.START          # cut short by the reset
    assert proto.classify("echo:restart").kind == proto.OTHER
    assert proto.classify("//action:pause").text == "pause"
    assert proto.classify(" T:20.00 /0.00 B:20.00 /0.00 @:0 B@:0").kind == proto.TEMPS
    assert proto.parse_position("X:1.00 Y:2.50 Z:0.20 E:4.00 Count X:80 Y:200 Z:80") == (1.0, 2.5, 0.2, 4.0)
    name, caps = proto.capabilities(["FIRMWARE_NAME:Marlin 2.1.2.1 (Nov 22 2026) SOURCE_CODE_URL:x",
                                     "Cap:AUTOREPORT_TEMP:1", "Cap:EEPROM:0"])
    assert name == "Marlin 2.1.2.1" and caps == {"AUTOREPORT_TEMP": True, "EEPROM": False}


def _send(win: Window, payload: bytes) -> Entry:
    e = win.number(Entry(payload), proto.frame(win.next_n, payload))
    win.sent(e)
    return e


def test_marlin_window_counts_rx_bytes_behind_the_oldest_line():
    win = Window(rx_buffer=64, slots=4)
    win.reset_numbering(1)
    first = _send(win, b"G1 X1 Y1 E0.1")                        # ~22 bytes framed
    assert win.may_send(60)                                     # only what sits behind the oldest counts
    _send(win, b"G1 X2 Y2 E0.2")
    _send(win, b"G1 X3 Y3 E0.3")
    assert not win.may_send(40)                                 # 2 x 22 + 40 > 63 bytes of RX
    assert [e.n for e in win.ack_through(first.n)] == [1]
    assert win.may_send(20)


def test_marlin_window_rewind_drops_ghosts_and_falls_back_to_one_line():
    win = Window(rx_buffer=128, slots=4, clean_lines=10)
    win.reset_numbering(1)
    for i in range(4):
        _send(win, b"G1 X%d" % i)
    assert win.line_limit > 1
    ghost_bytes = win.rewind(3)                                 # firmware wants line 3 again
    assert ghost_bytes == sum(len(win.history[n].wire) for n in (3, 4))
    assert [e.n for e in win.inflight] == [1, 2] and win.send_n == 3 and win.resending
    assert win.line_limit == 1                                  # one line at a time for a while
    win.ack_through(14)
    assert win.acked_n == 2                                     # never beyond what was sent
    for _ in range(3):
        win.rewind(win.send_n)
    assert win.one_line_forever                                 # repeated errors: for the rest of the job
