"""`python -m services.cli`: what the tests, benchmarks and deploy scripts run."""

from services.cli import main

raise SystemExit(main())
