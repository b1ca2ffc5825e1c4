#!/usr/bin/env bash
# pgbench's own client runs a TPC-B-like script (scripts/pgbench-tpcb.sql) over the PostgreSQL
# wire protocol against a local 3-node Shoal cluster and against PostgreSQL 15 (fsync on) on
# the same machine, with the same data size: what `make bench-pgbench` runs. docs/benchmarks.md
# records the figures.
#
#   scripts/bench-pgbench.sh                   8 clients, scale 1, 30 s each
#   CLIENTS=16 SCALE=4 DURATION=60 scripts/bench-pgbench.sh
#
# Shoal's tables are loaded with INSERTs through psql (Shoal has no COPY); PostgreSQL's with
# `pgbench -i`. Transactions that fail with 40001 are retried by pgbench (--max-tries).
set -euo pipefail

SHOAL=${SHOAL:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/release/shoal}
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-1}
DURATION=${DURATION:-30}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
script="$(cd "$(dirname "$0")" && pwd)/pgbench-tpcb.sql"

dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-pgbench.XXXXXX")
chmod 755 "$dir"
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"

# The pgbench tables at $SCALE, as SQL: 1 branch, 10 tellers and 100,000 accounts per unit.
pgbench_data() {
  cat <<SQL
CREATE TABLE pgbench_branches (bid INT PRIMARY KEY, bbalance INT, filler CHAR(88));
CREATE TABLE pgbench_tellers (tid INT PRIMARY KEY, bid INT, tbalance INT, filler CHAR(84));
CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84));
CREATE TABLE pgbench_history (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler CHAR(22));
SQL
  awk -v scale="$SCALE" 'BEGIN {
    for (b = 1; b <= scale; b++) printf "INSERT INTO pgbench_branches VALUES (%d, 0, NULL);\n", b
    for (t = 1; t <= 10 * scale; t++) printf "INSERT INTO pgbench_tellers VALUES (%d, %d, 0, NULL);\n", t, int((t - 1) / 10) + 1
    n = 100000 * scale
    for (a = 1; a <= n; a += 1000) {
      printf "INSERT INTO pgbench_accounts VALUES "
      for (i = a; i < a + 1000 && i <= n; i++) printf "%s(%d, %d, 0, NULL)", (i > a ? ", " : ""), i, int((i - 1) / 100000) + 1
      printf ";\n"
    }
  }'
}

run_pgbench() {
  "$PG_BIN/pgbench" -n -f "$script" -s "$SCALE" -c "$CLIENTS" -j 2 -T "$DURATION" \
    --max-tries=100 "$@" 2>&1 | grep -E "^(pgbench|number of|latency|tps|initial|maximum)" || true
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $(date -u +%FT%TZ)"
echo "== Shoal, 3 nodes (pgbench against node 1), scale $SCALE, $CLIENTS clients, ${DURATION}s"
start_shoal shoal 2745 2828 1543
export PGSSLMODE=disable
pgbench_data | psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 15431 -U root -d defaultdb
run_pgbench -h 127.0.0.1 -p 15431 -U root defaultdb
stop_all

echo "== PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), 1 node, fsync on, scale $SCALE, $CLIENTS clients, ${DURATION}s"
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
"$PG_BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p 25432 -U postgres postgres > /dev/null 2>&1
run_pgbench -h 127.0.0.1 -p 25432 -U postgres postgres
