#!/usr/bin/env bash
# Create a local pseudonym key file (outside git) when HOMICIDE_PSEUDONYM_KEY is unset.
set -eu
if [ -n "${HOMICIDE_PSEUDONYM_KEY:-}" ] || [ -n "${HOMICIDE_PSEUDONYM_KEY_FILE:-}" ]; then
  exit 0
fi
key_file=".pseudonym_key"
if [ ! -s "$key_file" ]; then
  umask 077
  python3 -c 'import secrets; print(secrets.token_hex(32))' > "$key_file"
  echo "HOMICIDE_PSEUDONYM_KEY was not set: created a local demonstration key in $key_file (git-ignored)."
  echo "Production must set HOMICIDE_PSEUDONYM_KEY from the force's secret store."
fi
