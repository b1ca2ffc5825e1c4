#!/usr/bin/env bash
# Starts a local 3-node Shoal cluster on temporary stores and initializes it.
#
#   scripts/local-cluster.sh          start (what `make cluster` runs)
#   scripts/local-cluster.sh stop     stop the cluster and delete its stores (`make cluster-stop`)
#
# Ports: node-to-node 26257-26259, HTTP 8080-8082, PostgreSQL 15432-15434 on 127.0.0.1. The
# cluster's directory is recorded in $STATE so `stop` finds it.
set -euo pipefail

STATE=${TMPDIR:-/tmp}/shoal-cluster.current
SHOAL=${SHOAL:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/debug/shoal}

stop() {
  if [ ! -f "$STATE" ]; then echo "no local cluster is running"; return 0; fi
  dir=$(cat "$STATE")
  for pid in $(cat "$dir/pids" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  for pid in $(cat "$dir/pids" 2>/dev/null); do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  rm -rf "$dir" "$STATE"
  echo "local cluster stopped; its stores in $dir are deleted"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ "${1:-}" = stop ]; then stop; exit 0; fi

if [ -f "$STATE" ]; then
  echo "a local cluster is already running (stores in $(cat "$STATE")); stop it with: make cluster-stop" >&2
  exit 1
fi
for port in 26257 26258 26259 8080 8081 8082 15432 15433 15434; do
  if listening "$port"; then
    echo "port $port on 127.0.0.1 is in use; the cluster needs 26257-26259, 8080-8082 and 15432-15434" >&2
    exit 1
  fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-cluster.XXXXXX")
echo "$dir" > "$STATE"
join=127.0.0.1:26257,127.0.0.1:26258,127.0.0.1:26259
for i in 1 2 3; do
  nohup "$SHOAL" start --store "$dir/n$i" --listen-addr "127.0.0.1:2625$((6 + i))" \
    --http-addr "127.0.0.1:808$((i - 1))" --pg-addr "127.0.0.1:1543$((1 + i))" \
    --join "$join" > "$dir/n$i.log" 2>&1 &
  echo $! >> "$dir/pids"
done
for port in 8080 8081 8082; do
  for _ in $(seq 100); do listening "$port" && break; sleep 0.1; done
  if ! listening "$port"; then
    echo "a node did not start; its log is in $dir" >&2
    stop
    exit 1
  fi
done
"$SHOAL" init --host 127.0.0.1:8080

cat <<MSG

A 3-node Shoal cluster is running (stores and logs in $dir).

  $SHOAL node status --host 127.0.0.1:8080
  $SHOAL debug kv put hello world --host 127.0.0.1:8081
  $SHOAL debug kv get hello --host 127.0.0.1:8082
  curl -s -XPOST localhost:8080/v1/kv/get -d '{"key": "hello"}'
  curl -s localhost:8080/v1/sql -d '{"sql": "CREATE TABLE t (k INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 42)"}'
  curl -s localhost:8081/v1/sql -d '{"sql": "SELECT * FROM t; EXPLAIN SELECT * FROM t WHERE k = 1"}'
  psql 'postgresql://root@127.0.0.1:15433/defaultdb?sslmode=disable' -c 'SELECT * FROM t'
  $SHOAL sql --url 'postgres://root@127.0.0.1:15434/defaultdb?sslmode=disable'

Any node serves any key. Stop the cluster with: make cluster-stop
MSG
