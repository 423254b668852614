#!/usr/bin/env bash
# The console's front-end files: the NHS.UK frontend's compiled CSS, JavaScript and images, and
# htmx, installed from the npm registry at the versions and integrity hashes package-lock.json
# records, then copied into the spa package (services/spa/console/static/vendor, not kept in
# git) so that spa serves them itself and the image carries them. Nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=${1:-services/spa/console/static/vendor}

command -v npm >/dev/null 2>&1 || { echo "npm is needed for the console's front-end packages (apt-get install npm)" >&2; exit 1; }
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

nhsuk=node_modules/nhsuk-frontend/dist/nhsuk
rm -rf "$vendor"
mkdir -p "$vendor/nhsuk" "$vendor/htmx"
cp "$nhsuk/nhsuk-frontend.min.css" "$nhsuk/nhsuk-frontend.min.js" "$vendor/nhsuk/"
# The compiled CSS loads the Frutiger fonts from assets.nhs.uk, which the console's Content
# Security Policy (font-src 'self') refuses and which are not the package's to copy: without
# their @font-face rules the pages use the font stack's fallback (Arial) and ask nothing of
# anywhere else.
sed -i -E 's/@font-face\{[^}]*assets\.nhs\.uk[^}]*\}//g' "$vendor/nhsuk/nhsuk-frontend.min.css"
if grep -q 'https://' "$vendor/nhsuk/nhsuk-frontend.min.css"; then
    echo "the NHS.UK frontend's CSS still loads something from elsewhere" >&2
    exit 1
fi
cp -r "$nhsuk/assets" "$vendor/nhsuk/assets"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx/"
cp node_modules/nhsuk-frontend/LICENSE "$vendor/nhsuk/LICENSE" 2>/dev/null || true
cp node_modules/htmx.org/LICENSE "$vendor/htmx/LICENSE" 2>/dev/null || true
