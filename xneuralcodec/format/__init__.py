"""The bitstream: what a chunk's bytes hold, in every released version."""
