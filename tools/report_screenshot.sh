#!/usr/bin/env bash
# A screenshot of a run's report (`reel report RUN_DIR`) in headless Chromium, to see what a
# person sees: the charts and the sample videos (playing; the shot is taken a few seconds in).
#
#   tools/report_screenshot.sh RUN_DIR [OUT.png]     # default RUN_DIR/report.png
#
# Installs Debian's chromium with apt-get when it is missing (not part of tools/setup.sh: the
# tests do not need a browser). Writes RUN_DIR/report.html first if it does not exist.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[[ $# -ge 1 ]] || { echo "usage: tools/report_screenshot.sh RUN_DIR [OUT.png]" >&2; exit 2; }
run="$1"
out="${2:-$run/report.png}"
reel="${REEL:-$root/build/reel}"
if ! command -v chromium > /dev/null; then
  sudo_cmd=""; [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > /dev/null
fi
[[ -f "$run/report.html" ]] || "$reel" report "$run" > /dev/null
# --virtual-time-budget lets the page run (videos start) for 3 s of page time before the shot.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --autoplay-policy=no-user-gesture-required \
  --virtual-time-budget=3000 --window-size=1400,2200 --screenshot="$(realpath -m "$out")" \
  "file://$(realpath "$run/report.html")" 2> /dev/null
[[ -s "$out" ]] || { echo "report_screenshot: chromium wrote no screenshot" >&2; exit 1; }
echo "screenshot: $out"
