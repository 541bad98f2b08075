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
# HiPS maps of the coadds (g, r, i and a colour composite) under
# $DIR/repo/hips, served at /api/hips/<map>/; incremental, so a rerun only
# checks them. Order 9 (0.8" pixels, all public) keeps this to a few seconds.
if "$BIN" hips --help >/dev/null 2>&1; then
  "$BIN" hips --repo "$DIR/repo" --color g,r,i --order 9
fi
if "$BIN" serve --help >/dev/null 2>&1; then
  echo "serving on http://127.0.0.1:$PORT"
  exec "$BIN" serve --repo "$DIR/repo" --host 127.0.0.1 --port "$PORT"
else
  echo "this build has no 'serve' subcommand yet; the repository is ready in $DIR/repo"
fi
