"""Virtual firmwares (Marlin, GRBL) on a pseudo-terminal, for tests, benchmarks and the demo."""
