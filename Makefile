# marketsignal: every developer and CI entry point. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
STACK := deploy/local/stack.sh
CONFIG ?= deploy/demo/rules.toml

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==24.3.1
	@# the built-in sources' extras too: their tests speak each vendor's shapes with the
	@# vendor's own classes (docs/feeds.md)
	$(PY) -m pip install -q -e '.[dev,yahoo,akshare,futu]'
	@touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv with the marketsignal command and dev tools

.PHONY: lint
lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: fmt
fmt: install ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Processes per pytest run of the unit and of the integration/e2e suites (pytest-xdist; 0 for
# one). Tests on the stack can share it: each has a namespace of its own (tests/support).
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS)
# The e2e tests first: they are the longest, and a worker given one last would run it alone.
LIVE_TESTS := tests/e2e tests/integration

.PHONY: unit
unit: install ## Unit tests (no I/O)
	$(BIN)/pytest tests/unit -q $(XDIST)

.PHONY: prometheus-check
prometheus-check: ## promtool: check both scrape configs, the alert rules, and run their unit tests
	cd deploy/prometheus && promtool check config prometheus.yml && promtool check config prometheus.compose.yml
	cd deploy/prometheus && promtool check rules rules.yml && promtool test rules rules_test.yml

.PHONY: schemas
schemas: install ## Export JSON Schemas of the wire contract to schemas/json/
	$(BIN)/marketsignal schemas export schemas/json

.PHONY: demo-data
demo-data: install ## Regenerate the synthetic demo data (fixed seed) and its golden backtest
	$(PY) deploy/demo/generate.py deploy/demo/ticks.csv --jsonl deploy/demo/ticks.jsonl \
		--bars deploy/demo/bars.csv
	$(BIN)/marketsignal backtest deploy/demo/ticks.csv --config deploy/demo/rules.toml \
		--history deploy/demo/bars.csv > tests/unit/golden/demo_signals.jsonl

.PHONY: backtest
backtest: install ## Backtest the demo data set offline
	$(BIN)/marketsignal backtest deploy/demo/ticks.csv --config $(CONFIG) \
		--history deploy/demo/bars.csv

.PHONY: bench-backtest
bench-backtest: install ## Benchmark: backtest ticks/s on 1M generated ticks
	$(PY) bench/bench_backtest.py

.PHONY: bench-alerter
bench-alerter: install ## Benchmark: alerter alerts/s with 1, 100 and 10,000 subscriptions (real Redis)
	bash $(STACK) up
	$(PY) -m bench.bench_alerter

.PHONY: bench-fanout
bench-fanout: install ## Benchmark: p50/p99 alert latency to 10,000 subscribers (half match-all) at 20 alerts/s
	bash $(STACK) up
	$(PY) -m bench.bench_fanout

.PHONY: bench-history
bench-history: install ## Benchmark: memory of 10,000 symbols x 400 daily bars
	$(PY) bench/bench_history_memory.py

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -c 'import sys; from bench.live.drain import quix_available; sys.exit(not quix_available())'
	@touch $(BENCH_STAMP)

.PHONY: bench
bench: $(BENCH_STAMP) ## The live path against its limit, ceiling and a peer, latency, alerter, backtest: bench/results.json, docs/bench.png
	bash $(STACK) up
	$(PY) -m bench.live $(BENCH_ARGS)

.PHONY: bench-cost
bench-cost: $(BENCH_STAMP) ## Benchmark: CPU per process and tick-to-alert at 1k/5k/20k ticks/s on `make up`'s services, and the Quix peer at 5k
	bash $(STACK) up
	$(PY) -m bench.live.cost $(BENCH_ARGS)

.PHONY: bench-levels
bench-levels: $(BENCH_STAMP) ## Benchmark: a drain with 100,000 price levels against none, arming latency, a level's p99 at 5k ticks/s
	bash $(STACK) up
	$(PY) -m bench.live.levels $(BENCH_ARGS)

.PHONY: bench-cluster
bench-cluster: $(BENCH_STAMP) ## Benchmark: what replication costs here: drain and p99 at 5k ticks/s on one broker, and on 3 nodes with RF 1 and RF 3
	bash $(STACK) up
	$(PY) -m bench.live.cluster $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: $(BENCH_STAMP) ## `make bench` at development size (a few minutes)
	bash $(STACK) up
	$(PY) -m bench.live --quick $(BENCH_ARGS)

.PHONY: bench-all
bench-all: bench bench-backtest bench-alerter bench-fanout bench-history bench-cluster ## Every benchmark

# Components that are down now: the ones `stack.sh up` is about to start, hence the only
# ones the fault suite may restart (a stack that was already up may serve others).
STARTS = $$(bash $(STACK) status | awk '$$2 == "down" {printf "%s ", $$1}')

# `make test` is a graph that `make -j` runs: what can share the stack runs at once, and a fault
# test that restarts a component runs while nothing else uses it. Where restarts are allowed
# (a fresh clone: FAULT_RESTARTS below), the order is
#   lint, unit, the compat broker's start and the Redis restart, all at once;
#   then the Kafka restart, beside the compat suite (its own broker);
#   then integration/e2e and the rest of the fault suite (one test at a time), beside the
#   compat suite's end.
# Where they are not, the restart tests skip and the rest starts at once. Each part's output
# is printed whole when it ends (-O); -k runs every part that does not wait on a failed one.
.PHONY: test
test: install ## Lint, unit, integration, e2e and fault tests on the real stack it starts, and integration/e2e on the other Kafka line, in parallel where they can share the stack
	@echo "== lint, unit, integration/e2e and faults on Kafka (default line) and integration/e2e on Kafka $(KAFKA_COMPAT_VERSION), in parallel: each part prints when it ends"
	@rm -f $(TEST_FAILED)
	starts="$(STARTS)"; bash $(STACK) up && \
	$(MAKE) --no-print-directory -j4 -O -k TEST_GRAPH=1 FAULT_RESTARTS="$$starts" test-kafka-compat \
		lint test-unit-part test-live-part test-faults-part; \
	rc=$$?; $(COMPAT_STACK) reset > /dev/null; \
	if [ -s $(TEST_FAILED) ]; then echo "== failed: $$(cat $(TEST_FAILED))"; rc=1; fi; exit $$rc

# The parts of `make test` (not for direct use: FAULT_RESTARTS comes from `test`). The restart
# parts only order the others: a failed one is noted in TEST_FAILED, and what waited for it
# runs all the same.
TEST_FAILED := $(VENV)/.test-failed
.PHONY: test-unit-part test-live-part test-faults-part test-restart-redis-part test-restart-kafka-part
test-unit-part: install
	$(BIN)/pytest tests/unit -q $(XDIST)

test-restart-redis-part: install
	FAULT_RESTARTS="$(FAULT_RESTARTS)" $(BIN)/pytest -q \
		tests/faults/test_restarts.py::test_redis_restart_mid_stream || echo "$@" >> $(TEST_FAILED)

# After the Redis restart: the broker test's pipeline uses Redis.
test-restart-kafka-part: install test-restart-redis-part
	FAULT_RESTARTS="$(FAULT_RESTARTS)" $(BIN)/pytest -q \
		tests/faults/test_restarts.py::test_broker_restart_mid_stream || echo "$@" >> $(TEST_FAILED)

test-live-part: install test-restart-kafka-part
	$(BIN)/pytest $(LIVE_TESTS) -q $(XDIST)

# Serial: each fault test measures recovery times that other fault tests would distort.
test-faults-part: install test-restart-kafka-part
	FAULT_KILLS=$${FAULT_KILLS:-2} $(BIN)/pytest tests/faults -q \
		--ignore=tests/faults/test_restarts.py

ifdef TEST_GRAPH
# Inside `make test`: the compat suite uses the stack's Redis, which the Redis restart stops.
test-kafka-compat-suite: test-restart-redis-part
endif

.PHONY: test-faults
test-faults: install ## Fault suite: kills, broker and Redis restarts, poison (tests/faults; FAULT_KILLS=3)
	starts="$(STARTS)"; bash $(STACK) up && \
	FAULT_RESTARTS="$$starts" $(BIN)/pytest tests/faults -q

SOAK_RUNS ?= 3
.PHONY: soak
soak: install ## Processor kill -9 soak: SOAK_RUNS x (6 kills, one worker + 6 kills, two workers)
	bash $(STACK) up
	for run in $$(seq $(SOAK_RUNS)); do \
	  echo "== soak run $$run of $(SOAK_RUNS)"; \
	  FAULT_KILLS=$${FAULT_KILLS:-6} $(BIN)/pytest tests/faults -q -k processor || exit 1; \
	done

# Redis behind Sentinel (issue 24, docs/reliability.md "Redis failover"): a broker (reused if
# one answers on KAFKA_PORT) and a Redis HA of its own, on ports and in a state directory
# apart from the main stack's (it can run beside `make up`), the failover tests, then
# everything it started is stopped and its state wiped.
REDIS_HA_TEST_ENV := STACK_STATE=.local/redis-ha-test REDIS_PORT=16379 REDIS_HA_REPLICA_PORT=16380 \
	REDIS_HA_SENTINEL_PORTS="26479 26480 26481"
REDIS_HA_TESTS ?= tests/cluster_redis

.PHONY: test-redis-ha
test-redis-ha: install ## Redis primary kill -9 under a paced feed, Sentinel promotes the replica: exact delivery, alert gap, WAIT's cost (tests/cluster_redis)
	$(REDIS_HA_TEST_ENV) STACK_COMPONENTS=kafka bash $(STACK) up
	$(REDIS_HA_TEST_ENV) bash deploy/local/redis_ha.sh reset > /dev/null
	$(REDIS_HA_TEST_ENV) bash deploy/local/redis_ha.sh up || \
		{ $(REDIS_HA_TEST_ENV) bash deploy/local/redis_ha.sh reset; exit 1; }
	eval "$$($(REDIS_HA_TEST_ENV) bash deploy/local/redis_ha.sh env)"; \
	$(REDIS_HA_TEST_ENV) MARKETSIGNAL_REDIS_URL=redis://127.0.0.1:16379/0 \
		MARKETSIGNAL_REDIS_PASSWORD_FILE=.local/redis-ha-test/secrets/redis.password \
		$(BIN)/pytest $(REDIS_HA_TESTS) -q -m cluster; \
	rc=$$?; $(REDIS_HA_TEST_ENV) bash deploy/local/redis_ha.sh reset > /dev/null; \
	$(REDIS_HA_TEST_ENV) STACK_COMPONENTS=kafka bash $(STACK) reset > /dev/null; exit $$rc

# The other supported Kafka line (deploy/local/kafka.sh: 4.x is the default, 3.9 the other):
# a second broker of that version on its own ports and state directory, beside the main stack's
# Redis and Prometheus. It is formatted fresh for each run and stopped (and wiped) after it.
KAFKA_COMPAT_VERSION ?= 3.9.2
KAFKA_COMPAT_PORT ?= 19092
KAFKA_COMPAT_CONTROLLER_PORT ?= 19093
COMPAT_TESTS ?= $(LIVE_TESTS)
COMPAT_STACK := KAFKA_VERSION=$(KAFKA_COMPAT_VERSION) KAFKA_PORT=$(KAFKA_COMPAT_PORT) \
	KAFKA_CONTROLLER_PORT=$(KAFKA_COMPAT_CONTROLLER_PORT) STACK_STATE=.local/compat \
	STACK_COMPONENTS=kafka bash $(STACK)

.PHONY: test-kafka-compat
test-kafka-compat: test-kafka-compat-suite ## Integration and e2e tests against the other Kafka line (KAFKA_COMPAT_VERSION, 3.9.2)

# The broker's start is a part of its own, so that `make test` overlaps it with other work.
.PHONY: test-kafka-compat-broker test-kafka-compat-suite
test-kafka-compat-broker: install
	$(if $(TEST_GRAPH),,STACK_COMPONENTS="redis prometheus" bash $(STACK) up)
	$(COMPAT_STACK) reset
	$(COMPAT_STACK) up || { $(COMPAT_STACK) reset; exit 1; }

test-kafka-compat-suite: test-kafka-compat-broker
	@echo "== integration and e2e tests against Kafka $(KAFKA_COMPAT_VERSION) on 127.0.0.1:$(KAFKA_COMPAT_PORT)"
	KAFKA_VERSION=$(KAFKA_COMPAT_VERSION) MARKETSIGNAL_KAFKA_BOOTSTRAP=127.0.0.1:$(KAFKA_COMPAT_PORT) \
		$(BIN)/pytest $(COMPAT_TESTS) -q $(XDIST); \
		rc=$$?; $(COMPAT_STACK) reset; exit $$rc

.PHONY: integration
integration: install ## Integration and e2e tests only (starts the stack if needed)
	bash $(STACK) up
	$(BIN)/pytest $(LIVE_TESTS) -q $(XDIST)

.PHONY: run
run: install ## Start everything, replay the demo through the pipeline, show alerts live
	@was_up=$$(bash $(STACK) status | grep -q ' down ' && echo no || echo yes); \
	bash $(STACK) up && $(PY) deploy/local/run_demo.py; rc=$$?; \
	if [ "$$was_up" = no ]; then bash $(STACK) down; fi; \
	[ $$rc -eq 0 ] || exit $$rc; $(MAKE) --no-print-directory charts

.PHONY: charts
charts: install ## PNG charts of the demo's signals in .local/charts (backtest --plot)
	@mkdir -p .local
	@$(BIN)/marketsignal backtest deploy/demo/ticks.csv --config $(CONFIG) \
		--history deploy/demo/bars.csv --levels deploy/demo/levels.jsonl \
		--plot .local/charts > /dev/null 2> .local/charts.log \
		|| { cat .local/charts.log; exit 1; }
	@echo "charts of the demo's signals:"; sed -n 's/^chart: /  /p' .local/charts.log

.PHONY: up
up: install ## Stack plus the three services under supervisord (rules: MARKETSIGNAL_CONFIG)
	bash $(STACK) up
	bash deploy/local/services.sh up

.PHONY: down
down: ## Stop the services, their supervisor and the stack
	-bash deploy/local/services.sh down
	bash $(STACK) down

.PHONY: reset
reset: ## Stop everything and wipe the local stack's data (topics, tables, Redis)
	-bash deploy/local/services.sh down
	bash $(STACK) reset
	rm -rf .local/state

.PHONY: status
status: install ## Each component: up or down, address, lag (REDIS_HA=1: each Redis node and sentinel)
	bash deploy/local/services.sh status
	@if [ "$${REDIS_HA:-}" = 1 ]; then STACK_COMPONENTS=redis bash $(STACK) status; fi
	@if [ "$${REDIS_HA:-}" = 1 ] && [ -z "$${MARKETSIGNAL_REDIS_SENTINELS:-}" ]; then \
		eval "$$(bash deploy/local/redis_ha.sh env)"; fi; $(BIN)/marketsignal status

# Local stack without Docker (deploy/local/README.md). Readiness checks use Java, not the venv.
.PHONY: stack-up
stack-up: ## Start Kafka, Redis and Prometheus locally (reuses what already runs)
	bash $(STACK) up

.PHONY: stack-down
stack-down: ## Stop the local stack processes started by stack-up
	bash $(STACK) down

.PHONY: stack-status
stack-status: ## One line per local stack component: up/down and address
	bash $(STACK) status

.PHONY: stack-reset
stack-reset: ## Stop the local stack and delete its Kafka, Redis and Prometheus data
	bash $(STACK) reset

# A 3-node Kafka cluster (deploy/local/cluster.sh): replication factor 3, min.insync.replicas=2,
# unclean leader election off, on 127.0.0.1:29092-29094, beside the single-broker stack (which
# stays what `make run`, `make up` and `make test` use).
CLUSTER := deploy/local/cluster.sh

.PHONY: cluster-up cluster-down cluster-status cluster-reset
cluster-up: ## Start the local 3-node Kafka cluster (reuses the nodes that run)
	bash $(CLUSTER) up

cluster-down: ## Stop the local Kafka cluster's nodes
	bash $(CLUSTER) down

cluster-status: ## Each cluster node up/down with its address, and the active controller
	bash $(CLUSTER) status

cluster-reset: ## Stop the local Kafka cluster and delete its data
	bash $(CLUSTER) reset

# The services' settings on the cluster: every topic they create gets these.
CLUSTER_ENV = MARKETSIGNAL_KAFKA_BOOTSTRAP=$$(bash $(CLUSTER) bootstrap) \
	MARKETSIGNAL_REPLICATION_FACTOR=3 MARKETSIGNAL_MIN_INSYNC_REPLICAS=2

# The cluster fault suite (tests/cluster, marker `cluster`): a fresh cluster, Redis from the
# stack (reused if it runs, stopped afterwards if this target started it), every fault run
# one at a time; the cluster is stopped and wiped afterwards.
# Issue 24's fault suite on a replicated deployment: the Kafka cluster's faults, then the
# Redis failover; each starts what it needs on ports of its own and stops it after.
.PHONY: test-cluster test-cluster-kafka
test-cluster: test-cluster-kafka test-redis-ha ## Replicated faults: 3-node Kafka (leaders, controller, rolling, min ISR, wiped disk), then Redis failover through Sentinel

test-cluster-kafka: install ## Kafka cluster faults alone: broker, controller, rolling, min-ISR and wiped-disk on 3 nodes (tests/cluster)
	bash $(CLUSTER) reset > /dev/null
	redis_down=$$(STACK_COMPONENTS=redis bash $(STACK) status | awk '$$2 == "down"'); \
	STACK_COMPONENTS=redis bash $(STACK) up && \
	{ bash $(CLUSTER) up && $(CLUSTER_ENV) $(BIN)/pytest tests/cluster -q -m cluster $(PYTEST_ARGS); }; \
	rc=$$?; bash $(CLUSTER) reset > /dev/null; \
	if [ -n "$$redis_down" ]; then STACK_COMPONENTS=redis bash $(STACK) down > /dev/null; fi; \
	exit $$rc
