"""``python -m genlatent.cli``."""

from genlatent.cli.main import main

raise SystemExit(main())
