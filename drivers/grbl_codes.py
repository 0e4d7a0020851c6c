"""GRBL 1.1's error and alarm codes as sentences an operator can act on.

GRBL only sends numbers (`error:22`, `ALARM:1`); the words come from its
published code tables (grbl/doc/csv). grblHAL extends both tables; unknown
numbers still get a sentence that says where to look.
"""

from __future__ import annotations

ERRORS: dict[int, str] = {
    1: "Expected command letter: a G-code word has no letter.",
    2: "Bad number format: a G-code word is missing its value or the number is not valid.",
    3: "Invalid statement: the '$' system command is not recognised or supported.",
    4: "Value < 0: a negative value was received where a positive one is expected.",
    5: "Setting disabled: homing is not enabled in the settings ($22).",
    6: "Value < 3 usec: the minimum step pulse time must be greater than 3 microseconds.",
    7: "EEPROM read fail: the settings were restored to defaults.",
    8: "Not idle: this '$' command can only be used while GRBL is idle.",
    9: "G-code lock: G-code is locked out during an alarm or jog state.",
    10: "Soft limits cannot be enabled without homing also being enabled.",
    11: "Line overflow: the line is longer than GRBL accepts and was not executed.",
    12: "Step rate > 30 kHz: the setting would make the step rate exceed the maximum.",
    13: "Check Door: the safety door was detected as opened.",
    14: "Line length exceeded: the build info or startup line is too long for EEPROM and was not stored.",
    15: "Travel exceeded: the jog target exceeds machine travel; the jog was ignored.",
    16: "Invalid jog command: the jog has no '=' or contains prohibited G-code.",
    17: "Setting disabled: laser mode requires PWM output.",
    20: "Unsupported command: an unsupported or invalid G-code command was found in the block.",
    21: "Modal group violation: more than one G-code command from the same modal group in the block.",
    22: "Undefined feed rate: the feed rate has not been set.",
    23: "Invalid G-code: the command in the block requires an integer value.",
    24: "Invalid G-code: more than one command that needs axis words in the block.",
    25: "Invalid G-code: a G-code word is repeated in the block.",
    26: "Invalid G-code: no axis words in a block whose command needs them.",
    27: "Invalid G-code: the line number value is invalid.",
    28: "Invalid G-code: the command is missing a required value word.",
    29: "Invalid G-code: G59.x work coordinate systems are not supported.",
    30: "Invalid G-code: G53 is only allowed with G0 and G1 motion modes.",
    31: "Invalid G-code: axis words found in a block where nothing uses them.",
    32: "Invalid G-code: G2 and G3 arcs require at least one in-plane axis word.",
    33: "Invalid G-code: the motion command target is invalid.",
    34: "Invalid G-code: the arc radius value is invalid.",
    35: "Invalid G-code: G2 and G3 arcs require at least one in-plane offset word.",
    36: "Invalid G-code: unused value words found in the block.",
    37: "Invalid G-code: G43.1 dynamic tool length offset is not assigned to the tool length axis.",
    38: "Invalid G-code: the tool number is greater than the maximum supported.",
}

ALARMS: dict[int, str] = {
    1: "Hard limit triggered. Machine position is likely lost due to the sudden halt; re-homing is highly recommended.",
    2: "G-code motion target exceeds machine travel. Machine position safely retained; the alarm may be unlocked.",
    3: ("Reset while in motion. GRBL cannot guarantee the position; lost steps are likely; "
        "re-homing is highly recommended."),
    4: "Probe fail. The probe is not in the expected initial state before starting the probe cycle.",
    5: "Probe fail. The probe did not contact the workpiece within the programmed travel.",
    6: "Homing fail. Reset during the active homing cycle.",
    7: "Homing fail. The safety door was opened during the active homing cycle.",
    8: ("Homing fail. The cycle failed to clear the limit switch when pulling off; "
        "check the pull-off setting and wiring."),
    9: "Homing fail. Could not find the limit switch within the search distance.",
    10: "Homing fail. On a dual-axis machine the second limit switch was not found.",
}


def error_sentence(code: int) -> str:
    """`error:N` as one sentence, e.g. 'error:22 Undefined feed rate: ...'."""
    text = ERRORS.get(code, "unknown error code (see the controller's documentation)")
    return f"error:{code} {text}"


def alarm_sentence(code: int) -> str:
    """`ALARM:N` as one sentence, e.g. 'ALARM:1 Hard limit triggered. ...'."""
    text = ALARMS.get(code, "unknown alarm code (see the controller's documentation)")
    return f"ALARM:{code} {text}"
