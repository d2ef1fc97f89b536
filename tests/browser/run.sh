#!/usr/bin/env bash
# The status page's browser test: installs what a bare machine lacks (Debian's Chromium, node,
# playwright-core from the lock file), builds kiln, and runs the test in headless Chromium
# against a real kiln with real workers.
# Screenshots land in docs/ (overview, build page at 1280 px) and target/browser-screenshots/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: $* missing; install it (apt-get install $*) or run as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x /usr/bin/chromium ] || apt_install chromium
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi

cd "$here"
# playwright-core never downloads a browser of its own: it drives /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund

# KILN_BIN: a kiln binary to test (e.g. the one `cargo test` just built, which .ci/run uses to
# avoid a second compile with other features); otherwise build one.
if [ -z "${KILN_BIN:-}" ]; then
  (cd "$root" && cargo build)
fi
exec node --test --test-reporter=spec status_page.test.mjs
