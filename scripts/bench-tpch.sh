#!/usr/bin/env bash
# TPC-H at scale factor $SF (default 0.1): the data from `shoal workload tpch-data` (the
# tpchgen crate), loaded into a local 3-node Shoal cluster and into PostgreSQL on the same
# machine; the 22 queries (bench/tpch/) run on both and their results are compared row for
# row by scripts/bench-tpch.py; then the select-heavy join of scripts/bench-join8.py: what
# `make bench-tpch` runs. docs/benchmarks.md records the tables they print.
#
#   scripts/bench-tpch.sh                      SF 0.1, every query
#   SF=0.01 QUERIES=1,3,6 scripts/bench-tpch.sh
set -euo pipefail

SHOAL=${SHOAL:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/release/shoal}
SF=${SF:-0.1}
QUERIES=${QUERIES:-$(seq -s, 1 22)}
TIMEOUT=${TIMEOUT:-300}
OUT=${OUT:-}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
here="$(cd "$(dirname "$0")" && pwd)"
data=${TPCH_DATA:-${TMPDIR:-/tmp}/shoal-tpch-sf$SF}

dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-tpch.XXXXXX")
chmod 755 "$dir"
# shellcheck source=scripts/cluster-lib.sh
source "$here/cluster-lib.sh"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"
# The generated files are kept between runs (generating SF 0.1 takes seconds, but why again).
if [ ! -s "$data/lineitem.tbl" ]; then
  "$SHOAL" workload tpch-data --scale-factor "$SF" --out "$data"
fi
chmod -R a+rX "$data"

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
as_postgres=()
mkdir -p "$dir/pg"
if [ "$(id -u)" -eq 0 ]; then
  as_postgres=(runuser -u postgres --)
  chown postgres "$dir/pg"
fi
"${as_postgres[@]}" "$PG_BIN/initdb" -D "$dir/pg/data" -A trust -U postgres > /dev/null
"${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
  -o "-p 25432 -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=on" start > /dev/null
trap '"${as_postgres[@]}" "$PG_BIN/pg_ctl" -D "$dir/pg/data" -m fast stop > /dev/null 2>&1 || true; cleanup' EXIT
# C collation: text sorts bytewise, as in Shoal.
"$PG_BIN/createdb" -h 127.0.0.1 -p 25432 -U postgres -T template0 -l C tpch

start_shoal shoal 2745 2828 1543
export PGSSLMODE=disable
echo "== TPC-H SF $SF: Shoal 3 nodes (queries through node 1) vs PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), 1 node"
args=(--data "$data" --pg-host 127.0.0.1 --pg-port 25432 --pg-user postgres --pg-db tpch
  --shoal-host 127.0.0.1 --shoal-port 15431 --queries "$QUERIES" --timeout "$TIMEOUT")
if [ -n "$OUT" ]; then args+=(--out "$OUT"); fi
python3 "$here/bench-tpch.py" "${args[@]}"
echo "== the select-heavy join: 8 tables of 100 rows joined on equality predicates"
python3 "$here/bench-join8.py" --pg-port 25432 --pg-db tpch --shoal-port 15431
