#!/usr/bin/env bash
# The browser suite: builds the server once (debug), installs playwright-core
# from the lock file if needed (never a browser: it drives Debian's
# /usr/bin/chromium), then runs the test files one at a time. Each file
# starts its own server on a free port with a temporary SQLite database.
#   bash tests/browser/run.sh                 # every enabled file
#   bash tests/browser/run.sh chat.test.js    # just these
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "Chromium is missing: apt-get install -y chromium" >&2
  exit 1
fi
(cd "$root" && cargo build --locked --quiet)
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

# Every test file runs (in CI too); arguments pick some.
cd "$here"
enabled=(*.test.js)
if [ "$#" -gt 0 ]; then enabled=("$@"); fi

export E2E_SCREENSHOTS="${E2E_SCREENSHOTS:-$(mktemp -d /tmp/switchboard-shots-XXXXXX)}"
echo "screenshots: $E2E_SCREENSHOTS"
# One file at a time: each starts a server and a browser, and CI has two cores.
status=0
for file in "${enabled[@]}"; do
  echo "== $file"
  node --test "$file" || status=1
done
exit "$status"
