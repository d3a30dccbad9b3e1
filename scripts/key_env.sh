# Sourced by make: point the platform at the local key file when no key is set.
if [ -z "${HOMICIDE_PSEUDONYM_KEY:-}" ] && [ -z "${HOMICIDE_PSEUDONYM_KEY_FILE:-}" ] && [ -s .pseudonym_key ]; then
  export HOMICIDE_PSEUDONYM_KEY_FILE="$PWD/.pseudonym_key"
fi
