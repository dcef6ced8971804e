"""``python -m scaler``: the ``keda-queue-scaler`` command."""

from scaler.cli import main

main()
