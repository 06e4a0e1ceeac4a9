"""`python -m dgdr` runs the CLI."""

from dgdr.cli.main import main

main()
