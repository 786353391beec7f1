"""Benchmarks of xneuralcodec against reference compressors: ``python -m benchmarks.run``."""
