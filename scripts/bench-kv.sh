#!/usr/bin/env bash
# Drives a local 3-node Shoal cluster and a local 3-member etcd cluster with the same
# `shoal workload kv` runs, one system at a time, on temporary stores (what `make bench-kv` runs).
#
#   scripts/bench-kv.sh                 every shape below, Shoal then etcd
#   SYSTEMS=shoal scripts/bench-kv.sh   Shoal only (etcd also skipped when it is not installed)
#   RANGES=24 scripts/bench-kv.sh       Shoal's workload keys pre-split into 24 ranges
#
# etcd is Debian's `etcd-server` package (3.4), never built here. Each system's nodes get all
# of --hosts, so clients spread over every node (etcd forwards writes to its leader, Shoal routes
# to each range's leaseholder).
set -euo pipefail

# Every port is below Linux's ephemeral range (32768 and up): a port in that range may be held
# by an outgoing connection's TIME-WAIT and refuse the listener.

SHOAL=${SHOAL:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/release/shoal}
DURATION=${DURATION:-20s}
SYSTEMS=${SYSTEMS:-"shoal etcd"}
# concurrency:read-percent
SHAPES=${SHAPES:-"1:0 16:0 256:0 256:95"}
KEYS=${KEYS:-100000}
WORKLOAD_FLAGS=${WORKLOAD_FLAGS:-"--key-size 16 --value-size 256 --keys $KEYS"}
# Shoal ranges over the workload's keys (`wl-` and 13 digits with --key-size 16): the cluster's
# queues then spread their leases over the nodes.
RANGES=${RANGES:-1}

dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"

run_shapes() { # target hosts
  for shape in $SHAPES; do
    c=${shape%%:*}; r=${shape##*:}
    echo "== $1: $c clients, $r% reads"
    # shellcheck disable=SC2086
    "$SHOAL" workload kv --target "$1" --hosts "$2" --concurrency "$c" --read-percent "$r" \
      --duration "$DURATION" $WORKLOAD_FLAGS | grep -v '^ *[0-9]*s '
  done
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"

if [[ " $SYSTEMS " == *" shoal "* ]]; then
  start_shoal shoal 2725 2808
  for ((r = 1; r < RANGES; r++)); do
    "$SHOAL" debug split "$(printf 'wl-%013d' $((r * KEYS / RANGES)))" --host 127.0.0.1:28081 > /dev/null
  done
  if ((RANGES > 1)); then
    # Wait (at most a minute) until the replicate queues spread the leases: no node holds
    # more than two more than another.
    for _ in $(seq 60); do
      leases=$("$SHOAL" node status --json --host 127.0.0.1:28081 | grep -o '"leases": *[0-9]*' |
        grep -o '[0-9]*$' | sort -n)
      (($(echo "$leases" | tail -n 1) - $(echo "$leases" | head -n 1) <= 2)) && break
      sleep 1
    done
    "$SHOAL" debug ranges --host 127.0.0.1:28081 | tail -n 1
    "$SHOAL" node status --host 127.0.0.1:28081
  fi
  run_shapes shoal 127.0.0.1:28081,127.0.0.1:28082,127.0.0.1:28083
  stop_all
fi

if [[ " $SYSTEMS " == *" etcd "* ]]; then
  if ! command -v etcd > /dev/null; then
    echo "etcd is not installed (apt-get install etcd-server); skipping it" >&2
    exit 0
  fi
  cluster=e1=http://127.0.0.1:11380,e2=http://127.0.0.1:12380,e3=http://127.0.0.1:13380
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$dir/e$i" --listen-client-urls "http://127.0.0.1:1${i}379" \
      --advertise-client-urls "http://127.0.0.1:1${i}379" \
      --listen-peer-urls "http://127.0.0.1:1${i}380" \
      --initial-advertise-peer-urls "http://127.0.0.1:1${i}380" --initial-cluster "$cluster" \
      --initial-cluster-state new --initial-cluster-token bench \
      --quota-backend-bytes=8589934592 --log-level warn > "$dir/e$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3; do wait_port "1${i}379"; done
  run_shapes etcd http://127.0.0.1:11379,http://127.0.0.1:12379,http://127.0.0.1:13379
  stop_all
fi
