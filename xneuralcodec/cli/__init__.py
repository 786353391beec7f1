"""The ``xneuralcodec`` command and ``python -m xneuralcodec``: tools, never imported by the codec."""
