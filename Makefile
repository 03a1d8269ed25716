# dura - one-command build, test, demo, benchmark and install.
# Every target first installs missing Debian packages (scripts/install-deps).

BUILD      ?= build
ASAN_BUILD ?= build-asan
BENCH_BUILD ?= build-bench
# the worker burn-down's counts (bench/bench_worker.c; the issue's full
# size is -n 10000 -m 2000, its defaults): sized to about 2 minutes a store
BENCH_WORKER_ARGS ?= -n 2000 -m 400
# retention's cost on a commit stream (bench/bench_retention.c): finished
# runs and seconds per phase; moving a store (bench/bench_transfer.c): runs
# and steps each (the issue's full size is 100000 10)
BENCH_RETENTION_ARGS ?= 100000 5
BENCH_TRANSFER_ARGS ?= 20000 10
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
STORE      ?= sqlite:dura.db

.PHONY: all deps build test test-asan demo bench bench-mysql bench-pg bench-redis install clean

all: build

deps:
	@./scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# The suites, then the same suites under AddressSanitizer and UBSan, with
# throwaway database servers (tests/servers) running on loopback ports for
# the whole time and stopped afterwards, also when something fails; then
# each libFuzzer harness for FUZZ_TEST_SECONDS.
# The last line is the total over both runs: "N passed, N failed, N skipped".
test: build
	@rm -f .test-totals; \
	sdir=$$(mktemp -d "$${TMPDIR:-/tmp}/dura-servers.XXXXXX") || exit 1; \
	trap "./tests/servers stop '$$sdir' >/dev/null 2>&1; rm -rf '$$sdir'" EXIT; \
	trap 'exit 130' INT TERM; \
	eval "$$(./tests/servers start "$$sdir")"; \
	./scripts/run-tests $(BUILD) tests .test-totals; a=$$?; \
	$(MAKE) --no-print-directory test-asan TOTALS=.test-totals SERVERS_UP=1; b=$$?; \
	./tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_TEST_SECONDS) .test-totals; c=$$?; \
	awk '{p+=$$1; f+=$$2; s+=$$3} END {printf "%d passed, %d failed, %d skipped\n", p, f, s}' .test-totals; \
	rm -f .test-totals; \
	test $$a -eq 0 -a $$b -eq 0 -a $$c -eq 0

TOTALS ?= /dev/null
SERVERS_UP ?=
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDURA_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	@if [ -z "$(SERVERS_UP)" ]; then \
	  sdir=$$(mktemp -d "$${TMPDIR:-/tmp}/dura-servers.XXXXXX") || exit 1; \
	  trap "./tests/servers stop '$$sdir' >/dev/null 2>&1; rm -rf '$$sdir'" EXIT; \
	  trap 'exit 130' INT TERM; \
	  eval "$$(./tests/servers start "$$sdir")"; \
	fi; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ./scripts/run-tests $(ASAN_BUILD) asan $(TOTALS)

# The kill loop at length (tests/fault/killloop.c): CHAOS_KILLS SIGKILLs of
# worker processes racing on the same runs, on SQLite and on a throwaway
# MariaDB, PostgreSQL, Redis and Redis Cluster (tests/servers, stopped
# afterwards, also when something fails).
CHAOS_KILLS ?= 1000
.PHONY: chaos
chaos: build
	@sdir=$$(mktemp -d "$${TMPDIR:-/tmp}/dura-servers.XXXXXX") || exit 1; \
	trap "./tests/servers stop '$$sdir' >/dev/null 2>&1; rm -rf '$$sdir'" EXIT; \
	trap 'exit 130' INT TERM; \
	eval "$$(./tests/servers start "$$sdir")"; \
	rm -f $(BUILD)/chaos-killloop.db $(BUILD)/chaos-killloop.db-wal $(BUILD)/chaos-killloop.db-shm; \
	./$(BUILD)/tests/killloop_tests "sqlite:$(BUILD)/chaos-killloop.db" $(CHAOS_KILLS) $(BUILD); a=$$?; \
	bash tests/with-url.sh DURA_TEST_MYSQL_URL ./$(BUILD)/tests/killloop_tests @URL@ $(CHAOS_KILLS) $(BUILD); b=$$?; \
	bash tests/with-url.sh DURA_TEST_PG_URL ./$(BUILD)/tests/killloop_tests @URL@ $(CHAOS_KILLS) $(BUILD); c=$$?; \
	bash tests/with-url.sh DURA_TEST_REDIS_URL ./$(BUILD)/tests/killloop_tests @URL@ $(CHAOS_KILLS) $(BUILD); d=$$?; \
	bash tests/with-url.sh DURA_TEST_REDIS_CLUSTER_URL ./$(BUILD)/tests/killloop_tests @URL@ $(CHAOS_KILLS) $(BUILD); e=$$?; \
	test $$a -eq 0 -a $$b -eq 0 -a $$c -eq 0 -a $$d -eq 0 -a $$e -eq 0

# The libFuzzer harnesses (tests/fuzz, built with clang in FUZZ_BUILD), each
# for FUZZ_SECONDS over a copy of its seed corpus; a crash fails.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TEST_SECONDS ?= 30
.PHONY: fuzz
fuzz: deps
	./tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: build
	./scripts/demo $(BUILD) '$(STORE)'

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DDURA_BUILD_TESTS=OFF >/dev/null
	cmake --build $(BENCH_BUILD) -j$(JOBS) --target bench_commit bench_engine bench_cache bench_uuid bench_takeover bench_worker bench_waiting \
	  bench_retention bench_transfer
	./$(BENCH_BUILD)/bench/bench_commit $(BENCH_BUILD)/tmp
	./$(BENCH_BUILD)/bench/bench_engine $(BENCH_BUILD)/tmp
	./$(BENCH_BUILD)/bench/bench_cache $(BENCH_BUILD)/tmp
	./$(BENCH_BUILD)/bench/bench_uuid
	rm -f $(BENCH_BUILD)/tmp/takeover.db*; ./$(BENCH_BUILD)/bench/bench_takeover sqlite:$(BENCH_BUILD)/tmp/takeover.db 20
	rm -f $(BENCH_BUILD)/tmp/worker.db*; ./$(BENCH_BUILD)/bench/bench_worker sqlite:$(BENCH_BUILD)/tmp/worker.db $(BENCH_WORKER_ARGS)
	rm -f $(BENCH_BUILD)/tmp/waiting.db*; ./$(BENCH_BUILD)/bench/bench_waiting sqlite:$(BENCH_BUILD)/tmp/waiting.db $(BENCH_WAITING_ARGS)
	rm -f $(BENCH_BUILD)/tmp/retention.db*; ./$(BENCH_BUILD)/bench/bench_retention sqlite:$(BENCH_BUILD)/tmp/retention.db $(BENCH_RETENTION_ARGS)
	rm -f $(BENCH_BUILD)/tmp/moved.db*; ./$(BENCH_BUILD)/bench/bench_transfer $(BENCH_BUILD)/tmp sqlite:$(BENCH_BUILD)/tmp/moved.db $(BENCH_TRANSFER_ARGS)

# The MySQL/MariaDB benchmark (needs libmariadb), against a throwaway
# MariaDB (tests/servers) started in a temporary directory and stopped
# afterwards, also when something fails.
bench-mysql: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DDURA_BUILD_TESTS=OFF >/dev/null
	cmake --build $(BENCH_BUILD) -j$(JOBS) --target bench_mysql bench_takeover bench_worker bench_waiting bench_retention \
	  bench_transfer
	@sdir=$$(mktemp -d "$${TMPDIR:-/tmp}/dura-servers.XXXXXX") || exit 1; \
	trap "./tests/servers stop '$$sdir' >/dev/null 2>&1; rm -rf '$$sdir'" EXIT; \
	trap 'exit 130' INT TERM; \
	unset DURA_TEST_MYSQL_URL; eval "$$(./tests/servers start "$$sdir" mariadb)"; \
	test -n "$${DURA_TEST_MYSQL_URL:-}" || { echo "bench-mysql: no MariaDB server could be started" >&2; exit 1; }; \
	./$(BENCH_BUILD)/bench/bench_mysql "$$DURA_TEST_MYSQL_URL"; \
	./$(BENCH_BUILD)/bench/bench_takeover "$$DURA_TEST_MYSQL_URL" 20; \
	./$(BENCH_BUILD)/bench/bench_worker "$$DURA_TEST_MYSQL_URL" $(BENCH_WORKER_ARGS); \
	./$(BENCH_BUILD)/bench/bench_waiting "$$DURA_TEST_MYSQL_URL" $(BENCH_WAITING_ARGS); \
	./$(BENCH_BUILD)/bench/bench_retention "$$DURA_TEST_MYSQL_URL?prefix=bret_" $(BENCH_RETENTION_ARGS); \
	./$(BENCH_BUILD)/bench/bench_transfer $(BENCH_BUILD)/tmp "$$DURA_TEST_MYSQL_URL?prefix=bmove_" $(BENCH_TRANSFER_ARGS)

# dura on PostgreSQL against raw libpq (bench/bench_pg.c), on a throwaway
# server (tests/servers), stopped afterwards.
bench-pg: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DDURA_BUILD_TESTS=OFF >/dev/null
	cmake --build $(BENCH_BUILD) -j$(JOBS) --target bench_pg bench_worker bench_waiting
	@sdir=$$(mktemp -d "$${TMPDIR:-/tmp}/dura-servers.XXXXXX") || exit 1; \
	trap "./tests/servers stop '$$sdir' >/dev/null 2>&1; rm -rf '$$sdir'" EXIT; \
	trap 'exit 130' INT TERM; \
	unset DURA_TEST_PG_URL; eval "$$(./tests/servers start "$$sdir" postgres)"; \
	test -n "$${DURA_TEST_PG_URL:-}" || { echo "bench-pg: no PostgreSQL server could be started" >&2; exit 1; }; \
	./$(BENCH_BUILD)/bench/bench_pg "$$DURA_TEST_PG_URL"; \
	./$(BENCH_BUILD)/bench/bench_worker "$$DURA_TEST_PG_URL" $(BENCH_WORKER_ARGS); \
	./$(BENCH_BUILD)/bench/bench_waiting "$$DURA_TEST_PG_URL" $(BENCH_WAITING_ARGS)

# dura on Redis against raw hiredis (bench/bench_redis.c), on a throwaway
# server (tests/servers: appendonly, appendfsync always), stopped
# afterwards. BENCH_REDIS_SAMPLES: commits per variant in the 1-thread test.
BENCH_REDIS_SAMPLES ?= 3000
bench-redis: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DDURA_BUILD_TESTS=OFF >/dev/null
	cmake --build $(BENCH_BUILD) -j$(JOBS) --target bench_redis bench_waiting
	@sdir=$$(mktemp -d "$${TMPDIR:-/tmp}/dura-servers.XXXXXX") || exit 1; \
	trap "./tests/servers stop '$$sdir' >/dev/null 2>&1; rm -rf '$$sdir'" EXIT; \
	trap 'exit 130' INT TERM; \
	unset DURA_TEST_REDIS_URL; eval "$$(./tests/servers start "$$sdir" redis)"; \
	test -n "$${DURA_TEST_REDIS_URL:-}" || { echo "bench-redis: no Redis server could be started" >&2; exit 1; }; \
	./$(BENCH_BUILD)/bench/bench_redis "$$DURA_TEST_REDIS_URL" $(BENCH_REDIS_SAMPLES); \
	./$(BENCH_BUILD)/bench/bench_waiting "$$DURA_TEST_REDIS_URL" $(BENCH_WAITING_ARGS)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) $(FUZZ_BUILD)
