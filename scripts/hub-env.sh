# Sourced by scripts/demo.sh and scripts/serve.sh (the README's `make demo`, `make serve`): the
# environment every hub process shares, set up once here.
#   - PATH with the project's venv; HUB_STATE_DIR (default .hub) for local state;
#   - HUB_SECRET_KEYS: given, or a key made once in $HUB_STATE_DIR/secret_keys (mode 600);
#   - HUB_DATABASE_URL: given, or the embedded PostgreSQL started in $HUB_STATE_DIR/pgdata
#     (then `started_embedded=1`, for the caller's exit trap to stop it);
#   - `step TEXT`: a progress line.
export PATH="$PWD/.venv/bin:$PATH"
export HUB_STATE_DIR="${HUB_STATE_DIR:-$PWD/.hub}"
mkdir -p "$HUB_STATE_DIR"

step() { printf '\n==> %s\n' "$*"; }

if [ -z "${HUB_SECRET_KEYS:-}" ]; then
  keyfile="$HUB_STATE_DIR/secret_keys"
  if [ ! -s "$keyfile" ]; then
    step "generating a local encryption key in $keyfile (set HUB_SECRET_KEYS to use your own)"
    (umask 077 && hub keys generate > "$keyfile")
  fi
  HUB_SECRET_KEYS="$(cat "$keyfile")"
  export HUB_SECRET_KEYS
fi

started_embedded=""
if [ -z "${HUB_DATABASE_URL:-}" ]; then
  step "starting embedded PostgreSQL in $HUB_STATE_DIR/pgdata (set HUB_DATABASE_URL for a server of your own)"
  HUB_DATABASE_URL="$(hub db url --show-password)"
  export HUB_DATABASE_URL
  started_embedded=1
fi
