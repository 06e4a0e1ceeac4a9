"""`python -m dgdr` runs the CLI."""

from dgdr.cli import main

main()
