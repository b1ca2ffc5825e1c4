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
