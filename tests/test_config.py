"""Config loading: the shipped example is valid; every kind of mistake names key, value and rule."""

import pytest

from edge import config
from edge.cli import main
from edge.errors import ConfigError

ROOT = config.Path(__file__).resolve().parent.parent


def test_example_config_is_valid():
    cfg = config.load(ROOT / "config" / "fabedge.example.toml")
    assert cfg.machine.kind == "printer"
    assert cfg.serial.protocol == "marlin"
    assert cfg.volume.y == [-4.0, 210.0]
    assert "M500" in cfg.limits.forbidden


@pytest.mark.parametrize("text, expected", [
    ('[machine]\nkind = "boat"', "machine.kind = 'boat': allowed values are 'printer', 'laser'"),
    ('[serial]\nbaud = "fast"', "serial.baud = 'fast': expected a whole number"),
    ('[serial]\nbaud = 12345', "serial.baud = 12345: allowed values are"),
    ('[nonsense]\nx = 1', "unknown key 'nonsense'"),
    ('[motion]\nmax_fedrate = [1,2,3,4]', "unknown key 'motion.max_fedrate'"),
    ('[volume]\nx = [1]', "volume.x = [1]: expected a list of 2 values"),
    ('[volume]\nx = [200, 100]', "volume.x = [200.0, 100.0]: the minimum must be below the maximum"),
    ('[limits]\nmax_bed_c = 900', "limits.max_bed_c = 900: must be at most 200"),
    ('[motion]\nmax_feedrate = [1, 2, "z", 4]', "motion.max_feedrate[2] = 'z': expected a number"),
    ('[[trust.keys]]\nid = "k"', "missing required key 'public_key'"),
    ('[machine]\nkind = "laser"', "a laser (machine.kind = 'laser') is driven over 'grbl'"),
    ('[machine]\nid = "a/b"', "machine.id = 'a/b'"),
    ('[broker]\nurl = "http://x"', "broker.url = 'http://x': must start with mqtt://"),
    ('[machine\nid=1', "not valid TOML"),
    ('[panel]\nstop = 0', "panel.stop = 0: a machine that START can start needs a STOP button"),
    ('[panel]\nled_red = 22', "panel.led_red = 22: pin 22 is already panel.stop"),
])
def test_mistakes_are_named(text, expected):
    with pytest.raises(ConfigError) as err:
        config.loads(text, source="lab.toml")
    assert str(err.value).startswith("lab.toml: ")
    assert expected in str(err.value)


def test_config_check_cli(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text('[machine]\nid = "p1"\nsite = "north"\n')
    assert main(["config", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[panel]\nstart = 99\n')
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml: panel.start = 99: must be at most 27" in err
    assert "Traceback" not in err
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_replace_merges_and_validates():
    cfg = config.default().replace(serial={"baud": 250000})
    assert cfg.serial.baud == 250000 and cfg.serial.port == config.default().serial.port
    with pytest.raises(ConfigError):
        config.default().replace(serial={"baud": 1})


def test_usage_mistakes_exit_1_not_2(capsys):
    # 2 means "job rejected" for analyze/stream; a wrong option must not look like a rejection.
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "x.gcode", "--jsn"])
    assert exc.value.code == 1
    with pytest.raises(SystemExit) as exc:
        main(["config"])
    assert exc.value.code == 1
