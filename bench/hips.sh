#!/usr/bin/env bash
# HiPS generation benchmark: pixserve hips vs CDS Hipsgen (Debian `aladin`)
# on the same deepCoadd files of one band, in the same run; and the time the
# demo's maps add (three bands + colour).
#   bash bench/hips.sh BUILD/pixserve [WORKDIR] [ORDER]
set -euo pipefail
BIN=$(readlink -f "${1:?pixserve binary}")
WORK=${2:-$(mktemp -d /tmp/pixserve-bench-hips.XXXXXX)}
ORDER=${3:-10}
JAR=/usr/share/java/aladin.jar
mkdir -p "$WORK"
WORK=$(readlink -f "$WORK")
if [[ ! -f "$WORK/survey/truth.csv" ]]; then "$BIN" simulate --out "$WORK/survey" >/dev/null; fi
"$BIN" ingest --repo "$WORK/repo" --name bench --transfer hardlink "$WORK/survey" >/dev/null

now() { date +%s.%N; }
t0=$(now)
out=$("$BIN" hips --repo "$WORK/repo" --band r --order "$ORDER" --force --audience public --out "$WORK/hips/deepCoadd-r" 2>/dev/null)
t1=$(now)
tiles=$(sed -n 's/.*, \([0-9]*\) in the map.*/\1/p' <<<"$out" | head -1)  # non-empty tiles, as Hipsgen counts
px=$(echo "$t1 - $t0" | bc -l)
printf "pixserve hips band r, order %s: %s tiles in %.2f s = %.1f tiles/s\n" "$ORDER" "$tiles" "$px" "$(echo "$tiles / $px" | bc -l)"

t0=$(now)
"$BIN" hips --repo "$WORK/repo" --color g,r,i --order "$ORDER" --force --audience public >/dev/null 2>&1
t1=$(now)
printf "pixserve demo maps (g, r, i + colour), order %s: %.2f s\n" "$ORDER" "$(echo "$t1 - $t0" | bc -l)"

if [[ -f $JAR ]]; then
  rm -rf "$WORK/hipsgen-r"
  t0=$(now)
  java -Xmx2g -cp "$JAR" cds.allsky.HipsGen in="$WORK/survey/deepCoadd/r" out="$WORK/hipsgen-r" order="$ORDER" \
    hdu=1 creator_did=ivo://bench/hipsgen/r id=ivo://bench/hipsgen/r INDEX TILES PNG >"$WORK/hipsgen.log" 2>&1 || true
  t1=$(now)
  hg=$(echo "$t1 - $t0" | bc -l)
  htiles=$(find "$WORK/hipsgen-r" -name 'Npix*.fits' | wc -l)
  printf "Hipsgen (aladin) band r, order %s: %s tiles in %.2f s = %.1f tiles/s\n" "$ORDER" "$htiles" "$hg" "$(echo "$htiles / $hg" | bc -l)"
  printf "ratio (Hipsgen time / pixserve time): %.2f\n" "$(echo "$hg / $px" | bc -l)"
else
  echo "Hipsgen: /usr/share/java/aladin.jar not found (apt-get install aladin)"
fi
