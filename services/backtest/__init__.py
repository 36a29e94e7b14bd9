"""Offline backtest: the detectors run on a file, no broker."""
