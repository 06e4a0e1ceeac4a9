"""`python -m dgdr` runs the CLI."""

from dgdr.cli.commands import main

main()
