# Shoal's front door. `make test` is what CI runs (through .ci/run).

# Keep build products outside the clone so fresh clones and CI runs reuse them: RocksDB's C++
# alone takes many minutes to compile.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/shoal-target
CARGO ?= cargo

.PHONY: all deps build test unit fmt fmt-check lint doc openapi-check golden bench bench-plan bench-kv bench-bank bench-tpcb bench-tpch bench-pgbench demo cluster cluster-stop jepsen jepsen-smoke

all: build

build: deps
	$(CARGO) build --workspace

## deps: install what a fresh Debian machine lacks (libclang for RocksDB's bindings, ...)
deps:
	@.ci/install-deps

## test: formatting, lints, docs and every test (what CI runs)
test: deps
	$(MAKE) fmt-check lint doc openapi-check unit

unit:
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

## openapi-check: the HTTP API's OpenAPI document passes a schema validator
openapi-check:
	python3 -m openapi_spec_validator docs/openapi.json

## golden: regenerate goldenscript outputs; review the diff before committing
golden:
	UPDATE_GOLDENFILES=1 $(CARGO) test --workspace

## bench: criterion micro-benchmarks of MVCC on RocksDB (release build)
bench:
	$(CARGO) bench -p shoal-storage --bench mvcc

## bench-plan: criterion micro-benchmarks of SQL planning (parse, bind, optimize; ADR 0012)
bench-plan:
	$(CARGO) bench -p shoal-sql --bench plan

## bench-kv: `shoal workload kv` against a local 3-node Shoal cluster and a 3-member etcd
bench-kv: deps
	$(CARGO) build --release -p shoal
	scripts/bench-kv.sh

## bench-bank: `shoal workload bank` (transfers in transactions) against a local 3-node cluster
bench-bank: deps
	$(CARGO) build --release -p shoal
	scripts/bench-bank.sh

## bench-tpch: TPC-H (SF 0.1, tpchgen) on a local 3-node Shoal and on PostgreSQL, compared row for row
bench-tpch: deps
	$(CARGO) build --release -p shoal
	scripts/bench-tpch.sh

## bench-tpcb: `shoal workload tpcb` (pgbench's TPC-B over SQL) against a local 3-node cluster
bench-tpcb: deps
	$(CARGO) build --release -p shoal
	scripts/bench-tpcb.sh

## bench-pgbench: pgbench's own client over pgwire: Shoal (3 nodes) and PostgreSQL, same data
bench-pgbench: deps
	$(CARGO) build --release -p shoal
	scripts/bench-pgbench.sh

## jepsen-smoke: on 3 nodes, 30 s per run: the register workload under ten nemeses, list-append
## and bank (SQL) under a partition, a crash and a clock nemesis, and the two unsafe canaries
## that must be reported invalid (about 12 minutes; CI runs it). `cargo build --workspace`
## resolves features as `make test`'s doc step does, so RocksDB is not compiled again.
jepsen-smoke: deps
	$(CARGO) build --workspace
	$(CARGO_TARGET_DIR)/debug/shoal-jepsen smoke --nodes 3 --time-limit 30s --interval 5s $(JEPSEN_FLAGS)

## jepsen: on 5 nodes, 60 s per run: every workload under every nemesis and four pairs, and
## the three canaries (131 runs, release build, about 3.5 hours; run it in parts with
## JEPSEN_FLAGS="--only g2,monotonic"; see docs/jepsen.md)
jepsen: deps
	$(CARGO) build --release -p shoal -p shoal-jepsen
	$(CARGO_TARGET_DIR)/release/shoal-jepsen smoke --nodes 5 --time-limit 60s --interval 8s $(JEPSEN_FLAGS)

## demo: build shoal and open its SQL shell on a 3-node cluster running in one process, with
## sample data (`\q` ends it and deletes its stores)
demo: deps
	$(CARGO) build --workspace
	$(CARGO_TARGET_DIR)/debug/shoal demo $(DEMO_FLAGS)

## cluster: a local 3-node cluster of separate `shoal start` processes on temporary stores
## (stop: make cluster-stop)
cluster: deps
	$(CARGO) build --workspace
	@scripts/local-cluster.sh

cluster-stop:
	@scripts/local-cluster.sh stop
