"""What tests share, whatever folder they are in (unit, integration, e2e, faults).

- `wait`: `wait_for`, the one way to wait on a condition (never a fixed sleep).
- `services`: the real `marketsignal` commands as subprocesses (`Service`, `run_cli`,
  `service_env`, `free_port`).
- `stack`: settings in a test's namespace, reading a topic back (`read_all`).
- `live`: watching the running stack (`Subscriber`, `Drained`, `drop_namespace`).
- `fixtures`: the pytest fixtures over these and the factories, registered for every
  folder by tests/conftest.py.
- `factories`: valid signals, alerts, subscriptions and service environments.
- `summary`: the counts of a command's summary line.
- `history_server`: a stand-in on loopback for the HTTP APIs `history fetch` reads
  through akshare and yfinance.
"""
