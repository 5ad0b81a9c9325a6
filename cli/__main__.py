"""``python -m cli``: the same as the ``waybill`` script."""

from cli.main import main

raise SystemExit(main())
