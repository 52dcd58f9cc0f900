"""`python -m cis_tui` runs the command-line interface."""

from cis_tui.cli import main

raise SystemExit(main())
