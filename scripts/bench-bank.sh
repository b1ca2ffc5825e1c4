#!/usr/bin/env bash
# Drives a local 3-node Shoal cluster with `shoal workload bank` on temporary stores (what
# `make bench-bank` runs). toyDB's bank workload, the issue's peer, is built and run outside
# this repository; docs/benchmarks.md records its figures and version.
#
#   scripts/bench-bank.sh                          16 clients, 1000 accounts, 1 and 8 ranges
#   CONCURRENCY=64 RANGES="8" scripts/bench-bank.sh
set -euo pipefail

SHOAL=${SHOAL:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/release/shoal}
DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-16}
ACCOUNTS=${ACCOUNTS:-1000}
RANGES=${RANGES:-"1 8"}

dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bank.XXXXXX")
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"
for ranges in $RANGES; do
  start_shoal "r$ranges-shoal" 2735 2818
  echo "== $ranges ranges, $CONCURRENCY clients"
  "$SHOAL" workload bank --hosts 127.0.0.1:28181,127.0.0.1:28182,127.0.0.1:28183 \
    --accounts "$ACCOUNTS" --ranges "$ranges" --concurrency "$CONCURRENCY" --duration "$DURATION"
  stop_all
done
