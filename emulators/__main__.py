"""`python -m emulators run | wait | drive-orders` (see emulators/cli.py)."""

from emulators.cli import main

main()
