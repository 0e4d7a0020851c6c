"""fabedge: the software on the Raspberry Pi next to one fab-lab machine."""

__version__ = "0.1.0"
