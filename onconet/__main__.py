"""``python -m onconet`` runs the console script."""

from onconet.cli import main

raise SystemExit(main())
