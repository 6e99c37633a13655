#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: installs what the tests need
# (system packages, the project, pywb's own virtualenv, the ReplayWeb.page bundle), then runs
# pytest. Safe to re-run: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# System packages: Chromium (browser capture and replay tests), Redis (distributed crawls),
# wget (a peer WARC writer whose files we index), Node/npm (ReplayWeb.page bundle), OpenSSL
# (`openssl ts`: the local timestamp authority of the provenance tests).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v wget >/dev/null 2>&1 || need+=(wget)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# shellcheck source=scripts/_env.sh
. scripts/_env.sh
echo "== installing socialark and its test dependencies"
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]"

if [ -x scripts/setup-replay.sh ]; then
  echo "== preparing replay tools (pywb virtualenv, ReplayWeb.page)"
  bash scripts/setup-replay.sh
fi

echo "== running the test suite (a skip for a missing dependency fails here)"
export SOCIALARK_TESTS_REQUIRE_ALL=1
if [ $# -gt 0 ]; then
  exec "$PY" -m pytest -q -p no:cacheprovider "$@"
fi
# The whole suite in two parts: everything not marked `serial` on one pytest-xdist worker per
# core (at most 4: each test may start browsers, servers and crawl subprocesses), then the
# timing-sensitive tests (stop within 5 s, nothing sent inside a rate-limit window) alone, so a
# loaded machine cannot make them flaky. SOCIALARK_TEST_WORKERS overrides the worker count.
workers="${SOCIALARK_TEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
if [ "$workers" -gt 4 ]; then workers=4; fi
status=0
echo "== parallel part ($workers workers)"
"$PY" -m pytest -q -p no:cacheprovider -n "$workers" -m "not serial" || status=$?
echo "== serial part (timing-sensitive tests)"
"$PY" -m pytest -q -p no:cacheprovider -m serial || status=$?
exit "$status"
