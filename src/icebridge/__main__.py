"""``python -m icebridge``."""

from icebridge.cli import main

main()
