#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for the kiosk: system packages (when root), a
# virtualenv in .venv, and the package with its dev extra. Safe to run again: it only
# installs what is missing.  Usage: scripts/bootstrap.sh [demo|test]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-demo}"

# Kivy's wheel bundles SDL2 but needs the system GL; pyscard builds against libpcsclite;
# nfcpy loads libusb; Xvfb runs the UI with no screen (FIELD-NOTES.md).
pkgs=(python3-venv swig libpcsclite-dev pcscd libusb-1.0-0 libgl1 libegl1 libgl1-mesa-dri
      libmtdev1 xvfb xauth fonts-noto-core)
# The virtual PC/SC reader is for tests only: never on a production kiosk (`kiosk doctor`).
# The hub's tests run on SQLite and on a throwaway PostgreSQL cluster (tests/pgcluster.py).
# Web pages are tested in headless Chromium, driven by its own chromedriver.
[ "$purpose" = test ] && pkgs+=(vsmartcard-vpcd pcsc-tools postgresql chromium chromium-driver)
# axe-core checks the shopper's page for WCAG 2.2 AA in those browser tests; it comes from npm.
if [ "$purpose" = test ] && ! command -v npm >/dev/null; then pkgs+=(npm); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing system packages: ${missing[*]}" >&2
    echo "bootstrap: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python >= 3.11 is needed ($("$PYTHON" --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
if [ "$purpose" = test ] && [ ! -f build/axe/node_modules/axe-core/axe.min.js ]; then
  npm install --prefix build/axe --no-audit --no-fund --silent axe-core@4 >/dev/null
fi
# The UI's built files: the merged Latin+Vietnamese+Cyrillic+Thai font, compiled catalogs, tap sound.
.venv/bin/python -m ui.build >/dev/null
echo "bootstrap: ready (.venv)"
