#!/bin/sh
# The container's entrypoint: runs the server, and with LITESTREAM_BUCKET set
# runs it under Litestream, which replicates the SQLite database continuously
# to an S3-compatible bucket and restores it from there when it is missing.
#
#   LITESTREAM_BUCKET       bucket of the replica; unset or empty: no replication
#   LITESTREAM_ENDPOINT     S3 endpoint URL (unset for AWS S3)
#   LITESTREAM_REGION       region (unset: us-east-1 with an endpoint, else looked up)
#   LITESTREAM_ACCESS_KEY_ID, LITESTREAM_SECRET_ACCESS_KEY   credentials
#   LITESTREAM_RETENTION    how long snapshots are kept (default 72h)
#   LITESTREAM_PATH         the replica's path in the bucket (default db)
#
# The arguments are the server's (the image's CMD is `-db /data/store.db`).
# For tests outside the image, three paths can be changed by environment:
#   PICOSHARE_BIN       the server (default /usr/local/bin/picoshare)
#   LITESTREAM_BIN      Litestream (default /usr/local/bin/litestream)
#   LITESTREAM_CONFIG   its configuration (default /etc/litestream.yml)
set -eu

server=${PICOSHARE_BIN:-/usr/local/bin/picoshare}
litestream=${LITESTREAM_BIN:-/usr/local/bin/litestream}
config=${LITESTREAM_CONFIG:-/etc/litestream.yml}

if [ -z "${LITESTREAM_BUCKET:-}" ]; then
  exec "$server" "$@"
fi

die() {
  echo "entrypoint: $*" >&2
  exit 1
}

# The database path, read from the arguments as the server reads them
# (-db PATH, -db=PATH, --db PATH, --db=PATH; the last one counts), and the
# server's default otherwise. While reading, each argument is also quoted for
# Litestream's -exec, which splits its one string like a shell: inside single
# quotes everything is literal, and a single quote is written as '\''.
db=data/store.db
command=$(printf '%s' "$server" | sed "s/'/'\\\\''/g")
command="'$command'"
want_db=0
for arg in "$@"; do
  if [ "$want_db" = 1 ]; then
    db=$arg
    want_db=0
  else
    case $arg in
      -db | --db) want_db=1 ;;
      -db=* | --db=*) db=${arg#*=} ;;
      --postgres-url | --postgres-url=*)
        die "LITESTREAM_BUCKET replicates the SQLite file, which the scale-out store (--postgres-url) does not use: unset one of them" ;;
    esac
  fi
  quoted=$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")
  command="$command '$quoted'"
done
[ "$want_db" = 0 ] || die "-db needs a path"
[ -n "$db" ] || die "-db needs a path"
if [ -n "${PS_POSTGRES_URL:-}" ]; then
  die "LITESTREAM_BUCKET replicates the SQLite file, which the scale-out store (PS_POSTGRES_URL) does not use: unset one of them"
fi
case $db in
  /*) ;;
  *) db=$(pwd)/$db ;;
esac
# litestream.yml names the database and its replica through these.
export DB_PATH="$db"
export LITESTREAM_RETENTION="${LITESTREAM_RETENTION:-72h}"
export LITESTREAM_PATH="${LITESTREAM_PATH:-db}"

command -v "$litestream" >/dev/null || die "LITESTREAM_BUCKET is set but Litestream is not at $litestream"
[ -r "$config" ] || die "LITESTREAM_BUCKET is set but $config cannot be read"

# A missing database is restored from the replica when the bucket holds one
# (and is checked with SQLite's quick_check before it is used); an empty
# bucket starts a new database. Any other failure (bucket unreachable, wrong
# credentials, a -wal or -shm file left without its database, a restored copy
# that fails the check) stops here rather than start an empty database over a
# replica.
if [ ! -e "$DB_PATH" ]; then
  mkdir -p "$(dirname "$DB_PATH")"
  echo "entrypoint: $DB_PATH is missing: restoring it from s3://$LITESTREAM_BUCKET/$LITESTREAM_PATH if the replica exists" >&2
  "$litestream" restore -config "$config" -if-replica-exists -integrity-check quick "$DB_PATH"
fi

# Litestream runs the server as its child, passes SIGTERM and SIGINT on to
# it, and after the server has exited copies what is left of the WAL to the
# replica before it exits itself.
exec "$litestream" replicate -config "$config" -exec "$command"
