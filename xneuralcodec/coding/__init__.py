"""Entropy coding: frozen tables and range coding, the exact integer hyper-synthesis, the
error-bound correction layer and per-plane rate control."""
