# Vigil — the single entry point for building, running and testing.
#   make run    start a dev server (single-node raft in ./vigil-dev-data, audit on)
#   make test   start the test services (.ci/services/*.sh) and run vet and every test
#   make bench  run the standard benchmark suite into bench/results/ (bin/vigil-bench: the
#               load generator is a binary of its own, so bin/vigil does not link it)
#   make compat drive Vigil with a Vault-compatible CLI and agent (VIGIL_COMPAT_BIN=/path/to/vault-or-bao)

GO            ?= go
BIN           := bin/vigil
SERVICES_DIR  ?= /tmp/vigil-services
export VIGIL_SERVICES_DIR := $(SERVICES_DIR)
TEST_TIMEOUT  ?= 45m
TEST_FLAGS    ?= -race -count=1 -timeout $(TEST_TIMEOUT)
PKGS          ?= ./...

.PHONY: all build run test test-only services-up services-down vet fmt bench demo-report clean compat

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vigil
	$(GO) build -o bin/vigil-bench ./cmd/vigil-bench
	$(GO) build -o bin/vigil-kfake ./cmd/vigil-kfake 2>/dev/null || true

run: build
	./$(BIN) server -dev

services-up:
	bash .ci/services/up.sh

services-down:
	bash .ci/services/down.sh

# staticcheck is pinned here and run through `go run`, so it needs no
# install step and does not enter go.mod.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet:
	$(GO) vet ./...
	$(STATICCHECK) ./...

# test: vet first (a finding fails before any service starts), then start
# every service the tests need (in parallel), run all
# tests, and stop the services on every way out (.ci/services/run.sh: also
# when a service fails to start half-way, or on an interrupt).
test: build vet
	@bash .ci/services/run.sh sh -c 'export VIGIL_BIN="$(CURDIR)/$(BIN)"; $(GO) test $(TEST_FLAGS) $(PKGS)'

# test-only: run tests against already-running services (developer loop).
test-only: build
	@set -a; [ -f $(SERVICES_DIR)/env.sh ] && . $(SERVICES_DIR)/env.sh; set +a; \
	  export VIGIL_BIN=$(CURDIR)/$(BIN); $(GO) test $(TEST_FLAGS) $(PKGS)

# compat: the compatibility suite (cmd/vigil/compat, build tag "compat"):
# the README's CLI commands (wrapping and control groups included) and an
# agent with AppRole auto-auth (plain and wrapped secret IDs), KV v2 and
# PostgreSQL credential templates, lease renewal and its API proxy, all run
# with the binary named by VIGIL_COMPAT_BIN (HashiCorp vault or OpenBao bao)
# against bin/vigil. Not part of `make test`. Needs PostgreSQL: it uses the
# running test services (make services-up) or starts PostgreSQL itself.
COMPAT_FLAGS ?= -count=1 -timeout 15m -v
compat: build
	@if [ -z "$(VIGIL_COMPAT_BIN)" ]; then \
	  echo "make compat: NOT RUN: VIGIL_COMPAT_BIN is not set."; \
	  echo "  Run it with a Vault-compatible binary, e.g. VIGIL_COMPAT_BIN=/usr/local/bin/bao make compat"; \
	  exit 0; \
	fi; \
	[ -x "$(VIGIL_COMPAT_BIN)" ] || { echo "make compat: VIGIL_COMPAT_BIN=$(VIGIL_COMPAT_BIN) is not an executable" >&2; exit 2; }; \
	set -a; [ -f $(SERVICES_DIR)/env.sh ] && . $(SERVICES_DIR)/env.sh; set +a; \
	if [ -z "$$VIGIL_TEST_PG_URL" ]; then bash .ci/services/postgres.sh start && eval "$$(bash .ci/services/postgres.sh env)" || exit 2; fi; \
	echo "make compat: $$($(VIGIL_COMPAT_BIN) version) against $$(./$(BIN) version)"; \
	VIGIL_REQUIRE_SERVICES=1 VIGIL_BIN=$(CURDIR)/$(BIN) VIGIL_COMPAT_BIN=$(VIGIL_COMPAT_BIN) \
	  $(GO) test -tags compat $(COMPAT_FLAGS) ./cmd/vigil/compat/

# bench: the standard suite (kv-read, kv-write, transit-encrypt x audit off,
# file, file+kafka, file+clickhouse; a few minutes) into
# bench/results/latest.{json,md}. Kafka and ClickHouse are started for the
# streaming arms; if they cannot be, those arms are reported as skipped.
# Extra flags: make bench BENCH_FLAGS="--peer-bin /usr/local/bin/bao --peer-kind openbao"
# With VIGIL_BENCH_PEER_BIN set (a Vault or OpenBao binary), the peer arm is
# added (VIGIL_BENCH_PEER_KIND: vault or openbao, default guessed).
BENCH_FLAGS ?= $(if $(VIGIL_BENCH_PEER_BIN),--peer-bin $(VIGIL_BENCH_PEER_BIN)) $(if $(VIGIL_BENCH_PEER_KIND),--peer-kind $(VIGIL_BENCH_PEER_KIND))
bench: build
	@bash .ci/services/run.sh --allow-missing ./bin/vigil-bench --vigil-bin ./$(BIN) --standard --out bench/results/latest.json --md bench/results/latest.md $(BENCH_FLAGS)

# demo-report: start an in-process dev server, generate a week of realistic
# traffic, and write the HIPAA and NRB reports (PDF, HTML) and the
# compliance check results into docs/sample-reports/.
DEMO_OUT ?= docs/sample-reports
demo-report:
	$(GO) run ./cmd/vigil-demo -out $(DEMO_OUT)

clean:
	rm -rf bin vigil-dev-data
