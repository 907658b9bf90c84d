#!/usr/bin/env bash
# Reproduces hub/web/static/vendor/ from the npm registry: only the minified dist files the
# settings pages load, each with its package's licence. No build step, nothing else is kept.
#   htmx.org 2.0.11   dist/htmx.min.js   (the 2.x line: its attributes and config are what the
#                                          templates use; 4.x changes both)
#   @picocss/pico 2.1.1  css/pico.min.css
#   uplot 1.6.32         dist/uPlot.iife.min.js, dist/uPlot.min.css (the sync history chart: a
#                                          canvas, no inline <style>, so it runs under the CSP)
# Run it to re-vendor (needs npm); commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11
PICO_VERSION=2.1.1
UPLOT_VERSION=1.6.32
dest=hub/web/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "htmx.org@$HTMX_VERSION" "@picocss/pico@$PICO_VERSION" "uplot@$UPLOT_VERSION" >/dev/null)
mkdir -p "$work/htmx" "$work/pico" "$work/uplot" "$dest"
tar xzf "$work/htmx.org-$HTMX_VERSION.tgz" -C "$work/htmx"
tar xzf "$work/picocss-pico-$PICO_VERSION.tgz" -C "$work/pico"
tar xzf "$work/uplot-$UPLOT_VERSION.tgz" -C "$work/uplot"

cp "$work/htmx/package/dist/htmx.min.js" "$dest/htmx.min.js"
cp "$work/htmx/package/LICENSE" "$dest/htmx.LICENSE"
cp "$work/pico/package/css/pico.min.css" "$dest/pico.min.css"
cp "$work/pico/package/LICENSE.md" "$dest/pico.LICENSE.md"
cp "$work/uplot/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$work/uplot/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$work/uplot/package/LICENSE" "$dest/uPlot.LICENSE"
printf 'htmx.org %s\n@picocss/pico %s\nuplot %s\n' "$HTMX_VERSION" "$PICO_VERSION" "$UPLOT_VERSION" > "$dest/VERSIONS"
echo "vendored htmx.org $HTMX_VERSION, @picocss/pico $PICO_VERSION and uplot $UPLOT_VERSION into $dest"
