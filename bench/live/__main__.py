"""`python -m bench.live`: the live bench (`make bench`, `make bench-quick`)."""

from bench.live.run import main

raise SystemExit(main())
