# Shared by the benchmark scripts: a temporary directory, the processes they start, and
# waiting for ports. Source it after setting `dir`.
#
# Every port the scripts use is below Linux's ephemeral range (32768 and up): a port in that
# range may be held by an outgoing connection's TIME-WAIT and refuse the listener.

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 200); do listening "$1" && return 0; sleep 0.1; done
  echo "nothing listens on port $1; logs are in $dir" >&2
  exit 1
}
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
  pids=()
}

# start_shoal NAME RPC HTTP [PG]: starts nodes 1-3 with stores $dir/NAME1..3, node i listening
# on 127.0.0.1:${RPC}$((6 + i)) for peers, 127.0.0.1:${HTTP}$i for HTTP and, given PG,
# 127.0.0.1:${PG}$i for PostgreSQL clients (RPC=2725 gives 27257-27259), waits for them and
# initializes the cluster through node 1.
start_shoal() {
  local name=$1 rpc=$2 http=$3 pg=${4:-} i pg_addr
  local join=127.0.0.1:${rpc}7,127.0.0.1:${rpc}8,127.0.0.1:${rpc}9
  for i in 1 2 3; do
    pg_addr=127.0.0.1:0
    if [ -n "$pg" ]; then pg_addr=127.0.0.1:${pg}$i; fi
    "$SHOAL" start --store "$dir/$name$i" --listen-addr "127.0.0.1:${rpc}$((6 + i))" \
      --http-addr "127.0.0.1:${http}$i" --pg-addr "$pg_addr" --join "$join" \
      > "$dir/$name$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3; do wait_port "${http}$i"; done
  "$SHOAL" init --host "127.0.0.1:${http}1" > /dev/null
}
