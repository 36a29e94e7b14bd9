"""The streaming processor: a faust-streaming worker around the pure detectors."""
