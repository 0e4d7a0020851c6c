"""Machine drivers: Marlin and GRBL protocols over pyserial, GPIO panel, camera. Never imports edge/."""
