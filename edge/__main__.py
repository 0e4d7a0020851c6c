"""`python -m edge` runs the fabedge command line."""

from edge.cli import main

raise SystemExit(main())
