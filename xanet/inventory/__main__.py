"""``python -m xanet.inventory``: see :mod:`xanet.inventory.check`."""

from xanet.inventory.check import main

raise SystemExit(main())
