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
SENTIMENT_MODEL=models/sentiment

step() { printf '\n==> %s\n' "$*"; }

if [ ! -f "$SENTIMENT_MODEL/classifier.json" ]; then
  step "Training the sentiment model on data/sentiment/customer_service.csv"
  "$VENV_BIN/python" -m training sentiment --data data/sentiment/customer_service.csv \
    --output "$SENTIMENT_MODEL" --overwrite --epochs 8
fi

step "Training the assistant (rasa train; unchanged parts come from the cache)"
"$VENV_BIN/rasa" train --fixed-model-name assistant --out models

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

step "Starting the action server on 127.0.0.1:$ACTIONS_PORT"
SANIC_HOST=127.0.0.1 "$VENV_BIN/rasa" run actions --actions actions --port "$ACTIONS_PORT" &
pids+=($!)

step "Starting the assistant on 127.0.0.1:$RASA_PORT"
"$VENV_BIN/rasa" run --enable-api --interface 127.0.0.1 --port "$RASA_PORT" \
  --model models/assistant.tar.gz --endpoints endpoints.yml --credentials credentials.yml &
pids+=($!)

for _ in $(seq 1 180); do
  if curl -sf "http://127.0.0.1:$RASA_PORT/status" >/dev/null 2>&1 \
      && curl -sf "http://127.0.0.1:$ACTIONS_PORT/health" >/dev/null 2>&1; then
    cat <<TXT

The assistant is up (Ctrl+C stops it):
  parse:    curl -s localhost:$RASA_PORT/model/parse -d '{"text": "where is my order 12345?"}'
  chat:     curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{"sender": "me", "message": "where is my order 12345?"}'
  socket.io: http://localhost:$RASA_PORT/socket.io (events user_uttered / bot_uttered)
  actions:  http://localhost:$ACTIONS_PORT/health
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
