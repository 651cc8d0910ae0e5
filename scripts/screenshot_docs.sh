#!/usr/bin/env bash
# Screenshots of the built documentation site, to check that its pages render with their
# maths and images: the home page and one API page, taken by Debian's chromium in
# headless mode from a local server.
#
#   scripts/screenshot_docs.sh [OUT_DIR]      # default OUT_DIR: docs/images/screenshots
#
# Builds the site with `mkdocs build --strict` into a scratch folder, serves it on
# 127.0.0.1:$PORT (default 8765), installs chromium with apt-get if it is missing (needs
# root), and writes OUT_DIR/home.png and OUT_DIR/api.png (1280x2000), and
# OUT_DIR/home-full.png (1280x4000: the home page down to its pictures of a real run).
#
# The pages load MathJax from a CDN. Where the CDN cannot be reached (an offline machine),
# the same MathJax 3 release is taken from the npm registry's `mathjax` package, copied
# into the scratch site and the scratch pages are pointed at it, so the screenshots still
# show the maths typeset by MathJax; the site's sources are not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-docs/images/screenshots}
port=${PORT:-8765}
api_page=${API_PAGE:-api/VectorQuantizer/}
export NO_MKDOCS_2_WARNING=1

scratch=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

echo "building the site"
"$root/.venv/bin/mkdocs" build --strict --quiet --site-dir "$scratch/site"

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    browser=$(command -v chromium)
fi

mathjax_url=$(grep -o 'https://[^"]*/tex-mml-chtml\.js' "$scratch/site/index.html" | head -n 1 || true)
if [ -n "$mathjax_url" ] && ! curl -fsS -m 10 -o /dev/null "$mathjax_url"; then
    echo "cannot reach $mathjax_url: serving MathJax 3 from the npm package instead"
    (cd "$scratch" && npm pack --silent mathjax@3 >/dev/null && tar -xzf mathjax-*.tgz)
    mkdir -p "$scratch/site/_mathjax"
    cp -r "$scratch/package/es5" "$scratch/site/_mathjax/"
    grep -rlF --include='*.html' "$mathjax_url" "$scratch/site" \
        | xargs sed -i "s#${mathjax_url}#/_mathjax/es5/tex-mml-chtml.js#g"
fi

"$root/.venv/bin/python" -m http.server "$port" --bind 127.0.0.1 --directory "$scratch/site" \
    >"$scratch/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
    curl -fs -m 1 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.2
done
curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$port/$api_page"

mkdir -p "$out"
shoot() {  # shoot URL_PATH FILE [WIDTH,HEIGHT]
    local profile
    profile=$(mktemp -d "$scratch/profile.XXXXXX")
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --window-size="${3:-1280,2000}" --virtual-time-budget=10000 \
        --screenshot="$2" "http://127.0.0.1:$port/$1" >"$scratch/chromium.log" 2>&1 \
        || { cat "$scratch/chromium.log" >&2; return 1; }
    test -s "$2"
    echo "wrote $2"
}
shoot "" "$out/home.png"
# the home page's pictures of a real run sit below the first 2000 pixels: a taller window
shoot "" "$out/home-full.png" 1280,4000
shoot "$api_page" "$out/api.png"
