"""``python -m order_status_client``: one conversation turn against the gateway."""

from .cli import main

raise SystemExit(main())
