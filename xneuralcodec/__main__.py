"""``python -m xneuralcodec``: the demo (``cli/demo.py``)."""

from .cli.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
