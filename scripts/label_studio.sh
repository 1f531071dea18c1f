#!/usr/bin/env bash
# A real Label Studio server for the interop tests, kept in its own virtual environment:
# label-studio pins older Django REST framework and redis releases than Flywheel does, so it
# can never share .venv.
#
#   scripts/label_studio.sh install          create the venv if missing (about 7 minutes, once)
#   scripts/label_studio.sh init DIR         initialise a data folder: database, admin, token
#   scripts/label_studio.sh start DIR PORT   serve DIR on 127.0.0.1:PORT (runs in the foreground)
#   scripts/label_studio.sh run DIR PORT     install and init if needed, then start
#
# The venv lives at $FLYWHEEL_LS_VENV (default ~/.cache/flywheel/label-studio-venv). The admin
# is $LS_USERNAME / $LS_PASSWORD with the legacy API token $LS_TOKEN (test defaults below).
# The pytest fixture in interop/tests/label_studio.py drives init and start itself.
set -euo pipefail

LS_VERSION="1.23.2"
VENV="${FLYWHEEL_LS_VENV:-$HOME/.cache/flywheel/label-studio-venv}"
PYTHON="${PYTHON:-python3.11}"
LS_USERNAME="${LS_USERNAME:-flywheel@example.com}"
LS_PASSWORD="${LS_PASSWORD:-flywheel-ls-password}"
LS_TOKEN="${LS_TOKEN:-flywheel0test0token0000000000000000000000}"

# Flywheel's own settings must not leak into Label Studio's Django, and a test server has no
# business phoning home (version check, analytics, Sentry).
unset DJANGO_SETTINGS_MODULE DJANGO_ENV DATABASE_URL REDIS_URL
export LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false SENTRY_DSN="" FRONTEND_SENTRY_DSN=""

install() {
  if [ -x "$VENV/bin/label-studio" ] && [ -f "$VENV/.installed-$LS_VERSION" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$VENV")"
  test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "label-studio==$LS_VERSION"
  touch "$VENV/.installed-$LS_VERSION"
}

init() {
  local dir="$1"
  mkdir -p "$dir"
  LABEL_STUDIO_BASE_DATA_DIR="$dir" "$VENV/bin/label-studio" init flywheel -q --data-dir "$dir" \
    --username "$LS_USERNAME" --password "$LS_PASSWORD" --user-token "$LS_TOKEN" --enable-legacy-api-token
}

start() {
  local dir="$1" port="$2"
  LABEL_STUDIO_BASE_DATA_DIR="$dir" exec "$VENV/bin/label-studio" start flywheel --no-browser \
    --port "$port" --internal-host 127.0.0.1 --data-dir "$dir" --enable-legacy-api-token
}

case "${1:-}" in
  install) install ;;
  init) install; init "$2" ;;
  start) start "$2" "$3" ;;
  run)
    install
    test -f "$2/label_studio.sqlite3" || init "$2"
    start "$2" "$3"
    ;;
  *) echo "usage: $0 install | init DIR | start DIR PORT | run DIR PORT" >&2; exit 2 ;;
esac
