#!/usr/bin/env bash
# Replay tools the tests use, each outside the project's environment because they pin old
# dependencies: pywb's own virtualenv (socialark replay), py-wacz's (`wacz validate`), and the
# prebuilt ReplayWeb.page bundle (npm pack). Each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
socialark replay --setup
python3 -c "from tests.replay_helpers import wacz_validator as w; print('wacz validator:', w())"
python3 -c "from tests.replay_helpers import replaywebpage_dir as r; print('ReplayWeb.page:', r())"
