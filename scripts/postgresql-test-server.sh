#!/bin/sh
# A private PostgreSQL server for tests, on a random loopback port:
#   scripts/postgresql-test-server.sh start DIR   # prints the server's URL, also written to DIR/url
#   scripts/postgresql-test-server.sh stop DIR    # stops it and removes its data and DIR
#   scripts/postgresql-test-server.sh down DIR    # stops it as a restart does (sessions closed), keeping its data
#   scripts/postgresql-test-server.sh up DIR      # starts it again, on the same port
#   scripts/postgresql-test-server.sh standby DIR SDIR
#       # a hot standby of the server of DIR (pg_basebackup -R: streaming
#       # replication) on another random loopback port; prints its URL, also in
#       # SDIR/url; stop, down and up take SDIR as they take DIR
# The data and the socket live in a fresh folder under /tmp (named in
# DIR/server), where the server's user can reach them whoever owns DIR.
# Debian's PostgreSQL refuses to run as root: run as root (CI), the server's
# programs run as the `postgres` user its package creates. The server trades
# durability for speed (fsync off): test data only.
set -eu
command=${1:?start, stop, down, up or standby}
dir=${2:?folder of the server}
bindir=$(pg_config --bindir)
as=""
if [ "$(id -u)" = 0 ]; then as="runuser -u postgres --"; fi

# Starts the server of data folder $1 (under $2) on port $3. A standby
# reports the queries it runs to the primary (hot_standby_feedback), so that
# replaying the primary's vacuum does not cancel them.
run_server() {
  $as "$bindir/pg_ctl" -D "$1" -w -t 60 -l "$2/server.log" -o "-p $3 -c listen_addresses=127.0.0.1 \
      -c unix_socket_directories=$2 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
      -c max_connections=200 -c hot_standby_feedback=on" start >/dev/null 2>&1
}

# A port the kernel had free a moment ago.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The folder of the server whose state is in DIR (checked to be one this
# script made).
server_of() {
  [ -f "$1/server" ] || { echo "no test server in $1" >&2; exit 1; }
  data=$(cat "$1/server")
  case $data in
  /tmp/pixserve-pg-*) echo "$data" ;;
  *) echo "not a test server: $data" >&2; exit 1 ;;
  esac
}

case $command in
start)
  if [ ! -x "$bindir/initdb" ]; then
    echo "PostgreSQL's server programs are not installed (scripts/install-deps.sh installs them)" >&2
    exit 1
  fi
  # A server this folder still names was started without being stopped
  # (ctest --repeat runs the start fixture again): stop it, not leak it.
  if [ -f "$dir/server" ]; then sh "$0" stop "$dir" >/dev/null 2>&1 || true; fi
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
    port=$(free_port)
    if run_server "$dir/data" "$dir" "$port"; then
      echo "$port" >"$state/port"
      echo "postgresql://pixserve@127.0.0.1:$port/postgres" >"$state/url"
      cat "$state/url"
      exit 0
    fi
  done
  tail -20 "$dir/server.log" >&2
  exit 1
  ;;
standby)
  sdir=${3:?folder of the standby}
  primary=$(server_of "$dir")
  rm -rf "$sdir"
  mkdir -p "$sdir"
  standby=$(mktemp -d /tmp/pixserve-pg-XXXXXX)
  echo "$standby" >"$sdir/server"
  [ -z "$as" ] || chown postgres "$standby"
  # The primary's data over a replication connection, with the settings
  # that make the copy follow it (-R: standby.signal, primary_conninfo).
  $as "$bindir/pg_basebackup" -h 127.0.0.1 -p "$(cat "$dir/port")" -U pixserve -D "$standby/data" -R -X stream \
    --no-sync >"$standby/basebackup.log" 2>&1 || { tail -20 "$standby/basebackup.log" >&2; exit 1; }
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if run_server "$standby/data" "$standby" "$port"; then
      echo "$port" >"$sdir/port"
      echo "postgresql://pixserve@127.0.0.1:$port/$(basename "$(cat "$dir/url")")" >"$sdir/url"
      cat "$sdir/url"
      exit 0
    fi
  done
  tail -20 "$standby/server.log" >&2
  exit 1
  ;;
down)
  data=$(server_of "$dir")
  $as "$bindir/pg_ctl" -D "$data/data" -m fast -w -t 60 stop >/dev/null
  ;;
up)
  data=$(server_of "$dir")
  run_server "$data/data" "$data" "$(cat "$dir/port")" || { tail -20 "$data/server.log" >&2; exit 1; }
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
  echo "usage: $0 start|stop|down|up DIR, or $0 standby DIR SDIR" >&2
  exit 2
  ;;
esac
