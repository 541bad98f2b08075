#!/bin/sh
# A private PostgreSQL server for tests, on a random loopback port:
#   scripts/postgresql-test-server.sh start DIR   # prints the server's URL, also written to DIR/url
#   scripts/postgresql-test-server.sh stop DIR    # stops it and removes its data and DIR
# The data and the socket live in a fresh folder under /tmp (named in
# DIR/server), where the server's user can reach them whoever owns DIR.
# Debian's PostgreSQL refuses to run as root: run as root (CI), the server's
# programs run as the `postgres` user its package creates. The server trades
# durability for speed (fsync off): test data only.
set -eu
command=${1:?start or stop}
dir=${2:?folder of the server}
bindir=$(pg_config --bindir)
as=""
if [ "$(id -u)" = 0 ]; then as="runuser -u postgres --"; fi

case $command in
start)
  if [ ! -x "$bindir/initdb" ]; then
    echo "PostgreSQL's server programs are not installed (scripts/install-deps.sh installs them)" >&2
    exit 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  state=$dir
  dir=$(mktemp -d /tmp/pixserve-pg-XXXXXX)
  echo "$dir" >"$state/server"
  [ -z "$as" ] || chown postgres "$dir"
  $as "$bindir/initdb" -D "$dir/data" -U pixserve --auth=trust -E UTF8 --locale=C --no-sync --no-instructions \
    >"$dir/initdb.log" 2>&1 || { tail -20 "$dir/initdb.log" >&2; exit 1; }
  # A port the kernel had free a moment ago; another process may take it
  # first, so a failed start tries another.
  for attempt in 1 2 3 4 5; do
    port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if $as "$bindir/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/server.log" -o "-p $port -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200" start >/dev/null 2>&1; then
      echo "postgresql://pixserve@127.0.0.1:$port/postgres" >"$state/url"
      cat "$state/url"
      exit 0
    fi
  done
  tail -20 "$dir/server.log" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/server" ]; then
    data=$(cat "$dir/server")
    case $data in
    /tmp/pixserve-pg-*)
      if [ -f "$data/data/postmaster.pid" ]; then
        $as "$bindir/pg_ctl" -D "$data/data" -m immediate -w stop >/dev/null 2>&1 || true
      fi
      rm -rf "$data"
      ;;
    esac
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
