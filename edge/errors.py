"""The exceptions fabedge raises on purpose: each message is one clear sentence
for a person (file, line and reason where there is one). The CLI prints them
as one line and exits 1; anything else is a bug and keeps its traceback."""


class FabedgeError(Exception):
    """Base of every error fabedge reports to a person."""


class UsageError(FabedgeError):
    """A command was called wrongly."""


class ConfigError(FabedgeError):
    """The configuration file is wrong: names the file, key, value and what is allowed."""


class GcodeError(FabedgeError):
    """A G-code file cannot be read or parsed at all (names file and line)."""
