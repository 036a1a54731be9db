"""``python -m hybridstack`` runs the command line."""

import sys

from hybridstack.cli import main

sys.exit(main())
