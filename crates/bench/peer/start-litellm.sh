#!/usr/bin/env bash
# Starts the LiteLLM proxy as a benchmark peer in front of mock-upstream, offline, on 127.0.0.1.
#
#   MOCK_FAST_BASE=http://127.0.0.1:9100/v1 MOCK_SLOW_BASE=http://127.0.0.1:9101/v1 PORT=4100 crates/bench/peer/start-litellm.sh
#   crates/bench/peer/start-litellm.sh --install-only        # only create/update the venv, then exit
#
# The bases are two mock-upstream OpenAI base URLs (the bench starts them). PORT defaults to 4100. Clients POST
# http://127.0.0.1:PORT/v1/chat/completions with model `mock-fast` or `mock-slow` and `Authorization: Bearer sk-bench`
# (LITELLM_MASTER_KEY overrides it); /v1/messages with `mock-fast-anthropic` or `mock-slow-anthropic` (the same key,
# as `x-api-key`), sent on to the mocks' Anthropic API at MOCK_FAST_ANTHROPIC_BASE / MOCK_SLOW_ANTHROPIC_BASE (by
# default the OpenAI bases without their /v1); /v1/responses with `mock-fast-responses` or `mock-slow-responses`,
# bridged to the mocks' chat completions. Ready when GET /health/liveliness answers 200.
#
# Optional environment: NUM_WORKERS (default 1), LITELLM_LOG (default WARNING: no per-request access log),
# LITELLM_VENV (default target/litellm-venv), PYTHON (default python3), MOCK_API_KEY (what LiteLLM sends upstream,
# default sk-mock; the mock accepts any non-empty key except `invalid-key`).
#
# The venv is (re)installed from requirements.txt whenever that file or the Python version changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${LITELLM_VENV:-$repo/target/litellm-venv}"
python="${PYTHON:-python3}"
requirements="$here/requirements.txt"
config="$here/litellm.yaml"

install_only=false
if [[ "${1:-}" == "--install-only" ]]; then
    install_only=true
    shift
fi
port="${PORT:-4100}"

log() { echo "start-litellm: $*" >&2; }

# --- venv: create or update when requirements.txt or the interpreter changed --------------------------------------
ensure_venv() {
    local wanted stamp="$venv/.requirements.stamp"
    wanted="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x "$venv/bin/litellm" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        return
    fi
    mkdir -p "$(dirname "$venv")"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null \
        || [[ "$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')" != "${wanted#* }" ]]; then
        log "creating venv $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    log "installing $(grep -v '^\s*#' "$requirements" | xargs) into $venv (about 40 s, 750 MB)"
    local started=$SECONDS
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" > "$stamp"
    log "installed in $((SECONDS - started)) s"
}

# Two benchmark runs starting at once must not install into the same venv together.
mkdir -p "$(dirname "$venv")"
exec 9> "$venv.lock"
if command -v flock > /dev/null; then flock 9; fi
ensure_venv
exec 9>&-

if $install_only; then
    exit 0
fi

if [[ -z "${MOCK_FAST_BASE:-}" || -z "${MOCK_SLOW_BASE:-}" ]]; then
    echo "usage: MOCK_FAST_BASE=http://127.0.0.1:9100/v1 MOCK_SLOW_BASE=http://127.0.0.1:9101/v1 [PORT=4100] $0" >&2
    exit 2
fi
workers="${NUM_WORKERS:-1}"

# --- environment: offline, no database, no .env, no telemetry ------------------------------------------------------
# Anything that would make LiteLLM reach a database, Redis or another config must not leak in from the caller.
unset DATABASE_URL DIRECT_URL DATABASE_URL_READ_REPLICA REDIS_URL REDIS_HOST REDIS_PORT REDIS_PASSWORD \
    LITELLM_CONFIG_BUCKET_NAME LITELLM_CONFIG_BUCKET_OBJECT_KEY HOST PORT NUM_WORKERS
export MOCK_FAST_BASE MOCK_SLOW_BASE
# The mock serves Anthropic's /v1/messages at its root, which LiteLLM's Anthropic provider appends to api_base.
export MOCK_FAST_ANTHROPIC_BASE="${MOCK_FAST_ANTHROPIC_BASE:-${MOCK_FAST_BASE%/v1}}"
export MOCK_SLOW_ANTHROPIC_BASE="${MOCK_SLOW_ANTHROPIC_BASE:-${MOCK_SLOW_BASE%/v1}}"
export MOCK_API_KEY="${MOCK_API_KEY:-sk-mock}"
export LITELLM_MASTER_KEY="${LITELLM_MASTER_KEY:-sk-bench}"
# Without it the proxy fetches its model cost map from the internet at startup (and retries in the background).
export LITELLM_LOCAL_MODEL_COST_MAP=True
export LITELLM_TELEMETRY=False LITELLM_TELEMETRY_DISABLED=true
# DEV mode (the default) loads a .env file from the working directory.
export LITELLM_MODE=PRODUCTION
export LITELLM_LOG="${LITELLM_LOG:-WARNING}"
export PYTHONUNBUFFERED=1

log "litellm $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))') on http://127.0.0.1:$port (mock-fast -> $MOCK_FAST_BASE, mock-slow -> $MOCK_SLOW_BASE, $workers worker(s))"
exec "$venv/bin/litellm" --config "$config" --host 127.0.0.1 --port "$port" --num_workers "$workers"
