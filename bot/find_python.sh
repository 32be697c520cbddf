#!/usr/bin/env bash
# Prints the path of a working Python 3.10, or explains how to get one and exits 1.
set -u
candidates=(python3.10)
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
  candidates+=("$root"/versions/3.10*/bin/python3.10)
fi
candidates+=("$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10)
for candidate in "${candidates[@]}"; do
  # A pyenv shim exists even when 3.10 is not selected: check that it runs.
  if version="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
      && [ "$version" = "3.10" ]; then
    command -v "$candidate" 2>/dev/null || echo "$candidate"
    exit 0
  fi
done
echo "error: Python 3.10 not found (Rasa 3.6 runs on Python 3.8-3.10 only)." >&2
echo "fix: install it, e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv', then rerun." >&2
exit 1
