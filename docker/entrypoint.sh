#!/usr/bin/env bash
# hwsearch-entrypoint: the image's ENTRYPOINT, also usable as a wrapper
# (`hwsearch-entrypoint ray start ...`) where no entrypoint runs (docker exec,
# Ray's cluster launcher). It
#
#  1. exports HWSEARCH_STORAGE, the Optuna storage URL, built from secrets so
#     that no URL with a password is ever written in a compose file, a manifest
#     or a command line. Never for `ray start`: Ray hands its environment to
#     every process it starts (the dashboard, every worker), and workers need no
#     database; a job's driver gets the URL by running under this script itself
#     (`ray job submit -- hwsearch-entrypoint hwsearch launch ...`). Otherwise,
#     first match wins:
#       - HWSEARCH_STORAGE already set (e.g. KubeRay's secretKeyRef): kept;
#       - HWSEARCH_STORAGE_FILE: a file holding the whole URL (`ray up`);
#       - POSTGRES_HOST set: postgresql+psycopg://<user>:<password>@<host>:<port>/<db>, from
#         POSTGRES_USER, POSTGRES_PORT, POSTGRES_DB and the password read from
#         POSTGRES_PASSWORD_FILE (default /run/secrets/postgres_password, the
#         Docker secret), URL-quoted;
#       - otherwise unset: hwsearch falls back to its SQLite default.
#  2. with HWSEARCH_CLAIM_GPU=1, claims one free GPU among those the container
#     sees (an flock on HWSEARCH_GPU_LOCK_DIR, a volume shared by the workers of
#     one host) and exports CUDA_VISIBLE_DEVICES. Docker gives every replica of
#     a `count: 1` reservation the same GPU 0, so the compose workers reserve
#     all GPUs and each takes a different one here. The lock lives as long as
#     the command, which inherits it.
#  3. execs the command.
set -euo pipefail

log() { printf 'hwsearch-entrypoint: %s\n' "$*" >&2; }

python_bin() { command -v python3 || command -v python; }

export_storage() {
    if [[ -n "${HWSEARCH_STORAGE:-}" ]]; then
        return 0
    fi
    if [[ -n "${HWSEARCH_STORAGE_FILE:-}" ]]; then
        if [[ ! -r "${HWSEARCH_STORAGE_FILE}" ]]; then
            log "HWSEARCH_STORAGE_FILE=${HWSEARCH_STORAGE_FILE} is missing or unreadable"
            exit 1
        fi
        HWSEARCH_STORAGE="$(tr -d '\r\n' < "${HWSEARCH_STORAGE_FILE}")"
        if [[ -z "${HWSEARCH_STORAGE}" ]]; then
            log "HWSEARCH_STORAGE_FILE=${HWSEARCH_STORAGE_FILE} is empty"
            exit 1
        fi
        export HWSEARCH_STORAGE
        return 0
    fi
    if [[ -z "${POSTGRES_HOST:-}" ]]; then
        return 0
    fi
    local password_file="${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres_password}"
    if [[ ! -r "${password_file}" ]]; then
        log "POSTGRES_HOST is set but the password file ${password_file} is missing or" \
            "unreadable (create docker/secrets/postgres_password, see docs/cluster.md)"
        exit 1
    fi
    HWSEARCH_STORAGE="$("$(python_bin)" - "${password_file}" <<'PY'
import os
import sys
from urllib.parse import quote

with open(sys.argv[1], encoding="utf-8") as f:
    secret = f.read().rstrip("\r\n")
if not secret:
    sys.exit("hwsearch-entrypoint: the PostgreSQL password file is empty")
if secret == "change-me":
    print("hwsearch-entrypoint: WARNING: the PostgreSQL password is the example"
          " placeholder 'change-me'", file=sys.stderr)
env = os.environ
user = quote(env.get("POSTGRES_USER") or "hwsearch", safe="")
database = quote(env.get("POSTGRES_DB") or "hwsearch", safe="")
netloc = env["POSTGRES_HOST"] + ":" + (env.get("POSTGRES_PORT") or "5432")
credentials = user + ":" + quote(secret, safe="")
print("postgresql+psycopg://" + credentials + "@" + netloc + "/" + database)
PY
)"
    export HWSEARCH_STORAGE
}

claim_gpu() {
    if [[ "${HWSEARCH_CLAIM_GPU:-0}" != "1" ]]; then
        return 0
    fi
    local lock_dir="${HWSEARCH_GPU_LOCK_DIR:-/var/lock/hwsearch-gpus}"
    if ! command -v nvidia-smi > /dev/null; then
        log "HWSEARCH_CLAIM_GPU=1 but nvidia-smi is missing: no GPU was given to this" \
            "container (NVIDIA Container Toolkit installed? GPU reserved in compose?)"
        exit 1
    fi
    mkdir -p "${lock_dir}"
    local gpus line index uuid fd
    gpus="$(nvidia-smi --query-gpu=index,uuid --format=csv,noheader)"
    if [[ -z "${gpus}" ]]; then
        log "nvidia-smi lists no GPU"
        exit 1
    fi
    while IFS= read -r line; do
        index="${line%%,*}"
        index="${index// /}"
        uuid="${line#*,}"
        uuid="${uuid// /}"
        exec {fd}> "${lock_dir}/${uuid}.lock"
        if flock --nonblock "${fd}"; then
            export CUDA_VISIBLE_DEVICES="${index}"
            export HWSEARCH_GPU_UUID="${uuid}"
            log "claimed GPU ${index} (${uuid})"
            return 0
        fi
        exec {fd}>&-
    done <<< "${gpus}"
    log "every GPU of this host is already claimed by another ray-worker container;" \
        "scale ray-worker to at most $(wc -l <<< "${gpus}") on this host"
    exit 1
}

# `ray start` (however it is spelled: ray, /opt/venv/bin/ray) never carries the
# URL, not even one set by the caller.
if [[ $# -ge 2 && "$(basename -- "$1")" == ray && "$2" == start ]]; then
    if [[ -n "${HWSEARCH_STORAGE:-}" ]]; then
        log "not passing HWSEARCH_STORAGE to ray start (Ray processes need no database)"
    fi
    unset HWSEARCH_STORAGE
else
    export_storage
fi
claim_gpu

if [[ $# -eq 0 ]]; then
    set -- bash
fi
exec "$@"
