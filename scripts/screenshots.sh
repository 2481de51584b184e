#!/usr/bin/env bash
# The screenshots of docs/screenshots/ (docs/accessibility.md): the lesson and
# the console at a 1280x720 laptop, at 200 % zoom, on a 1024x768 projector and
# on a 768-px tablet, taken by tests/a11y_layout.rs in headless Chromium and
# made small with pngquant (Debian package; skipped with a warning if absent).
# Usage: scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh

step "system packages"
ensure_packages
ensure_npm_packages
use_shared_target_dir

out="$PWD/docs/screenshots"
step "screenshots into $out"
PGLAB_SCREENSHOTS="$out" cargo test --locked --test a11y_layout -- layout_holds --test-threads=1
if command -v pngquant >/dev/null; then
  pngquant --force --skip-if-larger --strip --quality 60-85 --ext .png -- "$out"/*.png || true
else
  echo "pngquant is not installed (apt-get install pngquant): the PNGs stay as Chromium wrote them" >&2
fi
ls -l "$out"
