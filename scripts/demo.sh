#!/usr/bin/env bash
# A real crawl on a fresh machine, no internet needed: installs socialark, starts the bundled
# Mastodon-API emulator and test website on loopback, archives them, and shows what was captured.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR="${SOCIALARK_DEMO_DIR:-./demo-archive}"
MASTODON_PORT="${MASTODON_PORT:-8765}"
SITE_PORT="${SITE_PORT:-8766}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# shellcheck source=scripts/_env.sh
. scripts/_env.sh
echo "== installing socialark"
"$PY" -m pip install -q --disable-pip-version-check -e .

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() {  # wait until a local HTTP server answers
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" \
      >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server at $1 did not start" >&2; return 1
}

echo "== starting the bundled test website on 127.0.0.1:$SITE_PORT"
python3 -m tests.sites.core_site --port "$SITE_PORT" >/dev/null 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$SITE_PORT/robots.txt"

echo "== socialark crawl site http://127.0.0.1:$SITE_PORT/"
# The test site answers /error with a permanent 500: retry it quickly for the demo.
socialark crawl site "http://127.0.0.1:$SITE_PORT/" --scope host --delay 0 -s ARCHIVE_RATELIMIT_BACKOFF=0.1 \
  --collection demo-site --data-dir "$DATA_DIR" || [ $? -eq 1 ]

if python3 -c "import spiders.mastodon.spider" 2>/dev/null; then
  echo "== starting the bundled Mastodon emulator on 127.0.0.1:$MASTODON_PORT"
  python3 -m tests.emulators.mastodon --port "$MASTODON_PORT" >/dev/null 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$MASTODON_PORT/api/v1/instance"
  echo "== socialark crawl mastodon --instance http://127.0.0.1:$MASTODON_PORT --account alice"
  socialark crawl mastodon --instance "http://127.0.0.1:$MASTODON_PORT" --account alice \
    --delay 0 --collection demo-mastodon --data-dir "$DATA_DIR" || [ $? -eq 1 ]
fi

echo
echo "== what was archived"
socialark status --data-dir "$DATA_DIR"
echo
echo "WARC files:  $DATA_DIR/warcs/<collection>/*.warc.gz"
echo "Index:       $DATA_DIR/index.db (SQLite; see docs/index-schema.md)"
echo
echo "== socialark cdx http://127.0.0.1:$SITE_PORT/enc/ --match prefix --data-dir $DATA_DIR"
socialark cdx "http://127.0.0.1:$SITE_PORT/enc/" --match prefix --data-dir "$DATA_DIR"
if socialark search --help >/dev/null 2>&1 && python3 -c "import spiders.mastodon.spider" 2>/dev/null; then
  echo
  echo "== socialark search archive --limit 3 --data-dir $DATA_DIR"
  socialark search archive --limit 3 --data-dir "$DATA_DIR"
fi
