#!/usr/bin/env bash
# postgres-entrypoint: initialise $PGDATA on first start, then exec the server.
# The password is read from POSTGRES_PASSWORD_FILE by initdb itself (--pwfile):
# it is never in an argument, an environment variable or a log line.
set -euo pipefail

log() { printf 'postgres-entrypoint: %s\n' "$*" >&2; }

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=${POSTGRES_PASSWORD_FILE:?set POSTGRES_PASSWORD_FILE (a Docker secret)}
    if [ ! -s "$password_file" ]; then
        log "the password file $password_file is missing or empty"
        exit 1
    fi
    log "initialising $PGDATA (superuser $user, database $db)"
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 > /dev/null
    # Other containers reach the server over the project's network.
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        # A server on the socket only, just long enough to create the database.
        pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait start > /dev/null
        createdb --username="$user" "$db"
        pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop > /dev/null
    fi
fi

if [ "${1:-}" = postgres ]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
