#!/usr/bin/env bash
# Drives a local 3-node Shoal cluster with `shoal workload tpcb` (pgbench's TPC-B-like
# transaction over SQL) on temporary stores: what `make bench-tpcb` runs. docs/benchmarks.md
# records the figures, with single-node PostgreSQL's pgbench on the same machine for scale.
#
#   scripts/bench-tpcb.sh                          16 clients, scale 1 and 8, 4 ranges
#   CONCURRENCY=32 SCALES="8" scripts/bench-tpcb.sh
set -euo pipefail

SHOAL=${SHOAL:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/release/shoal}
DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-16}
SCALES=${SCALES:-"1 8"}
ACCOUNTS_PER_BRANCH=${ACCOUNTS_PER_BRANCH:-10000}
RANGES=${RANGES:-4}

dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-tpcb.XXXXXX")
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"
for scale in $SCALES; do
  start_shoal "s$scale-shoal" 2745 2828
  echo "== scale $scale ($((scale * ACCOUNTS_PER_BRANCH)) accounts, $RANGES ranges), $CONCURRENCY clients"
  "$SHOAL" workload tpcb --hosts 127.0.0.1:28281,127.0.0.1:28282,127.0.0.1:28283 \
    --scale "$scale" --accounts-per-branch "$ACCOUNTS_PER_BRANCH" --ranges "$RANGES" \
    --concurrency "$CONCURRENCY" --duration "$DURATION"
  stop_all
done
