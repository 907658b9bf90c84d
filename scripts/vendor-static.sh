#!/usr/bin/env bash
# Reproduces hub/web/static/vendor/ from the npm registry: only the minified dist files the
# settings pages load, each with its package's licence. No build step, nothing else is kept.
#   htmx.org 2.0.11   dist/htmx.min.js   (the 2.x line: its attributes and config are what the
#                                          templates use; 4.x changes both)
#   @picocss/pico 2.1.1  css/pico.min.css
# Run it to re-vendor (needs npm); commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11
PICO_VERSION=2.1.1
dest=hub/web/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "htmx.org@$HTMX_VERSION" "@picocss/pico@$PICO_VERSION" >/dev/null)
mkdir -p "$work/htmx" "$work/pico" "$dest"
tar xzf "$work/htmx.org-$HTMX_VERSION.tgz" -C "$work/htmx"
tar xzf "$work/picocss-pico-$PICO_VERSION.tgz" -C "$work/pico"

cp "$work/htmx/package/dist/htmx.min.js" "$dest/htmx.min.js"
cp "$work/htmx/package/LICENSE" "$dest/htmx.LICENSE"
cp "$work/pico/package/css/pico.min.css" "$dest/pico.min.css"
cp "$work/pico/package/LICENSE.md" "$dest/pico.LICENSE.md"
printf 'htmx.org %s\n@picocss/pico %s\n' "$HTMX_VERSION" "$PICO_VERSION" > "$dest/VERSIONS"
echo "vendored htmx.org $HTMX_VERSION and @picocss/pico $PICO_VERSION into $dest"
