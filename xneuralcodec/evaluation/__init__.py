"""Error metrics, reference compressors and the held-out evaluation: never imported by the codec."""
