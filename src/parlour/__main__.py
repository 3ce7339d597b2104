"""`python -m parlour` runs the command line."""

from parlour.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
