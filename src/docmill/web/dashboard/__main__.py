"""``python -m docmill.web.dashboard``: ask for a password, print its hash for
``DOCMILL_DASHBOARD_USERS``."""

from docmill.web.dashboard.passwords import main

raise SystemExit(main())
