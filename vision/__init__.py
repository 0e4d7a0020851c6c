"""Camera inspection: numpy/OpenCV in, verdicts out. Never imports edge/."""
