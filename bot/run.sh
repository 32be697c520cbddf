#!/usr/bin/env bash
# `make run`: train what is missing or changed, then serve the assistant and its
# action server on localhost until Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN=.venv/bin
export RASA_TELEMETRY_ENABLED=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false
RASA_PORT="${RASA_PORT:-5005}"
ACTIONS_PORT=5055  # endpoints.yml names this port
CONSOLE_PORT="${CONSOLE_PORT:-5006}"  # the agent console (python -m console)
SENTIMENT_MODEL=assets/sentiment  # shipped; retrain with `make sentiment-model`
SENTIMENT_ZH_MODEL=assets/sentiment_zh  # shipped; `make sentiment-zh-model`
JWT_SECRET_FILE=.secrets/rasa_jwt_secret  # git-ignored

step() { printf '\n==> %s\n' "$*"; }

for model in "$SENTIMENT_MODEL" "$SENTIMENT_ZH_MODEL"; do
  if [ ! -f "$model/classifier.json" ]; then
    echo "error: the shipped sentiment model $model is missing;" \
      "restore it with git, or retrain it (make sentiment-model, make sentiment-zh-model)" >&2
    exit 1
  fi
done

ENCODER=assets/encoders/multilingual-e5-small  # config.yml's intent encoder
if [ ! -f "$ENCODER/model.safetensors" ]; then
  echo "error: the multilingual encoder $ENCODER is missing; build it with" \
    "'make multilingual-encoder' (make run does), or train config.en.yml" >&2
  exit 1
fi

step "Training the assistant (rasa train; unchanged parts come from the cache)"
"$VENV_BIN/rasa" train --fixed-model-name assistant --out models
# Rasa would serve empty answers from an unreadable archive; refuse instead.
"$VENV_BIN/python" -m bot.check_model models/assistant.tar.gz

# secret VAR FILE WHAT: exports $VAR, from the environment if set, else from FILE
# (git-ignored), which the first run fills with a random secret.
secret() {
  local var="$1" file="$2" what="$3"
  if [ -z "${!var:-}" ]; then
    if [ ! -s "$file" ]; then
      mkdir -p "$(dirname "$file")"
      (umask 077 && "$VENV_BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))' \
        > "$file")
      echo "generated the $what in $file"
    fi
    printf -v "$var" '%s' "$(cat "$file")"
  fi
  export "${var?}"
}
# The key of the HTTP API's Bearer tokens (Rasa's JWT auth; cs_core/api_auth.py).
secret RASA_JWT_SECRET "$JWT_SECRET_FILE" "HTTP API JWT secret"
# The key that signs web chat session ids (bot/webchat_session.py), kept so that
# sessions survive restarts.
SESSION_SECRET_FILE=.secrets/webchat_session_secret  # git-ignored
secret WEBCHAT_SESSION_SECRET "$SESSION_SECRET_FILE" "web chat session secret"
# The action server classifies complaints through this Rasa server's /model/parse.
export RASA_URL="http://127.0.0.1:$RASA_PORT"
ORIGIN="http://localhost:$RASA_PORT"

export CONSOLE_HOST=127.0.0.1 CONSOLE_PORT

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

step "Starting the action server on 127.0.0.1:$ACTIONS_PORT"
# python -m actions: `rasa run actions` through the action server's start-up hook.
SANIC_HOST=127.0.0.1 "$VENV_BIN/python" -m actions --port "$ACTIONS_PORT" &
pids+=($!)

step "Starting the assistant on 127.0.0.1:$RASA_PORT"
# JWT authentication on the HTTP API; CORS only for the web chat's origin.
# python -m bot.serve: `rasa run` through the Rasa server's start-up hook (log
# masking, action timeout), with the JWT secret passed from RASA_JWT_SECRET in-process.
"$VENV_BIN/python" -m bot.serve --enable-api \
  --cors "$ORIGIN" "http://127.0.0.1:$RASA_PORT" --interface 127.0.0.1 --port "$RASA_PORT" \
  --model models/assistant.tar.gz --endpoints endpoints.yml \
  --credentials "${RASA_CREDENTIALS:-credentials.yml}" &
pids+=($!)

step "Starting the agent console on 127.0.0.1:$CONSOLE_PORT"
# It answers customers through Rasa's HTTP API (RASA_JWT_SECRET) and shares shop.db.
"$VENV_BIN/python" -m console &
pids+=($!)

for _ in $(seq 1 180); do
  if curl -sf "http://127.0.0.1:$RASA_PORT/" >/dev/null 2>&1 \
      && curl -sf "http://127.0.0.1:$ACTIONS_PORT/health" >/dev/null 2>&1 \
      && curl -sf "http://127.0.0.1:$CONSOLE_PORT/health" >/dev/null 2>&1; then
    cat <<TXT

The assistant is up (Ctrl+C stops it):
  web chat:  $ORIGIN/webhooks/webchat/
  chat API:  curl -s localhost:$RASA_PORT/webhooks/rest/webhook -H 'Content-Type: application/json' -d '{"sender": "me", "message": "where is my order 12345?"}'
  parse API: RASA_JWT_SECRET=\$(cat $JWT_SECRET_FILE) $VENV_BIN/python -m bot.api_token | curl -s localhost:$RASA_PORT/model/parse -H @- -H 'Content-Type: application/json' -d '{"text": "where is my order 12345?"}'
             (the HTTP API takes Bearer tokens signed with the secret in $JWT_SECRET_FILE)
  agents:    http://localhost:$CONSOLE_PORT/ (the agent console: queue, takeover, analytics, review)
             first agent: $VENV_BIN/python -m console create-agent --username you --name "Your Name"
             (asks for a password; scripts can set CONSOLE_AGENT_PASSWORD instead)
  shop data: shop.db (SQLite; tickets are in its tickets table)
  actions:   http://127.0.0.1:$ACTIONS_PORT/health (localhost only)
TXT
    wait -n "${pids[@]}"
    exit $?
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a server exited during start-up" >&2; exit 1; }
  done
  sleep 1
done
echo "the servers did not come up within 3 minutes" >&2
exit 1
