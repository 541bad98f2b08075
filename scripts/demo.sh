#!/usr/bin/env bash
# make demo: simulate the demo survey (once), ingest it (a no-op when done
# before), then serve it.
set -euo pipefail
BIN=${1:?pixserve binary}
DIR=${2:?demo directory}
PORT=${3:-8080}
mkdir -p "$DIR"
if [[ ! -f "$DIR/survey/truth.csv" ]]; then
  "$BIN" simulate --out "$DIR/survey"
fi
"$BIN" ingest --repo "$DIR/repo" --name demo --transfer hardlink "$DIR/survey"
"$BIN" query --repo "$DIR/repo" --type deepCoadd
if "$BIN" serve --help >/dev/null 2>&1; then
  echo "serving on http://127.0.0.1:$PORT"
  exec "$BIN" serve --repo "$DIR/repo" --host 127.0.0.1 --port "$PORT"
else
  echo "this build has no 'serve' subcommand yet; the repository is ready in $DIR/repo"
fi
