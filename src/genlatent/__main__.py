"""``python -m genlatent``: the ``genlatent`` command line."""

from genlatent.cli.main import main

raise SystemExit(main())
