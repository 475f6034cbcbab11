#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (run as root, or with the tools already there).
# Installs what the tests run for real: Chromium, redis-server, nginx (Debian packages), the project
# with its test extras in .venv; then runs pytest. Nothing is skipped for lack of a service.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)  # the benchmark site's server (benchmarks/tests)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"

.venv/bin/python -m ruff check snapcrawl tests benchmarks
.venv/bin/python -m mypy snapcrawl
exec .venv/bin/python -m pytest -p no:cacheprovider -n 2 "$@"
