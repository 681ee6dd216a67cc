#!/usr/bin/env bash
# Installs a pinned Python tool (slither, schemathesis) from PyPI into a virtualenv outside the clone,
# once per version of its requirements file, and prints the virtualenv's path.
#
#   anvil/python-tool.sh PROGRAM REQUIREMENTS [VENV]
#
# PROGRAM is the tool's command in the virtualenv's bin/, REQUIREMENTS its pinned requirements file,
# VENV where it goes (default ${XDG_CACHE_HOME:-~/.cache}/conference-tools/PROGRAM-venv). Two runs at
# once install once (a lock file beside the virtualenv).
set -euo pipefail

program="$1"
requirements="$2"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/conference-tools"
venv="${3:-$cache/$program-venv}"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
installed() { [[ -x "$venv/bin/$program" && "$(cat "$venv/.requirements.sha256" 2> /dev/null)" == "$want" ]]; }
if ! installed; then
  mkdir -p "$cache"
  exec 9> "$cache/$program-venv.lock"
  flock 9
  if ! installed; then
    echo "installing $program into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    echo "$want" > "$venv/.requirements.sha256"
  fi
  exec 9>&-
fi
echo "$venv"
