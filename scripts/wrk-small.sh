#!/usr/bin/env bash
# Keep-alive downloads of one small file with wrk (Debian's package),
# servers side by side: for each round, each server in turn gets a fresh
# data directory, one upload of a SIZE-byte file, then wrk at 1 and at 8
# connections for SECONDS each. Prints requests/s and wrk's p99 per server,
# round and connection count, and the bytes the server caused to be written
# to storage per request (/proc/PID/io, the wrk runs and a second after).
#
#   scripts/wrk-small.sh [-r ROUNDS] [-s SIZE] [-d SECONDS] NAME=BINARY...
#   scripts/wrk-small.sh -r 3 go=../shared/peers/picoshare-go rust=target/release/picoshare
set -euo pipefail
rounds=3 size=12800 seconds=5
while getopts "r:s:d:" o; do
  case $o in r) rounds=$OPTARG ;; s) size=$OPTARG ;; d) seconds=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-r ROUNDS] [-s SIZE] [-d SECONDS] NAME=BINARY..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d /tmp/wrk-small.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
head -c "$size" /dev/urandom >"$work/file.bin"
port=$((20000 + RANDOM % 20000))
echo "server round conns requests/s p99 disk_bytes/request"
for round in $(seq "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    dir="$work/$name-$round"
    mkdir -p "$dir/tmp"
    TMPDIR=$dir/tmp PORT=$port PS_LISTEN=127.0.0.1 PS_SHARED_SECRET=wrk-secret RUST_LOG=warn \
      "$bin" -db "$dir/store.db" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
    curl -s -c "$dir/cookies" -X POST -d '{"sharedSecretKey":"wrk-secret"}' "http://127.0.0.1:$port/api/auth" >/dev/null
    id=$(curl -s -b "$dir/cookies" -H 'Accept: application/json' -F "file=@$work/file.bin" \
      "http://127.0.0.1:$port/api/entry?expiration=2999-12-31T00:00:00Z" | sed 's/.*"id":"\([^"]*\)".*/\1/')
    url="http://127.0.0.1:$port/-$id"
    [ "$(curl -s -o /dev/null -w '%{size_download}' "$url")" = "$size" ] || { echo "$name: download failed" >&2; exit 1; }
    sleep 1
    for c in 1 8; do
      w0=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
      wrk -t "$([ "$c" = 1 ] && echo 1 || echo 2)" -c "$c" -d "${seconds}s" --latency "$url" >"$dir/wrk$c"
      sleep 1
      w1=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
      n=$(awk '/requests in/ {print $1}' "$dir/wrk$c")
      rps=$(awk '/^Requests\/sec/ {print $2}' "$dir/wrk$c")
      p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk$c")
      echo "$name $round $c $rps $p99 $(( (w1 - w0) / (n > 0 ? n : 1) ))"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    port=$((port + 1))
  done
done
