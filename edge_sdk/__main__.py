"""``python -m edge_sdk`` runs the CLI."""

import sys

from edge_sdk.cli import main

sys.exit(main())
