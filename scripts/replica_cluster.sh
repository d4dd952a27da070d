#!/bin/sh
# A PostgreSQL primary and its streaming replica on loopback, for the reports router (REPORTS_DATABASE_URL)
# and bench/suite.py. Both are new clusters under $DIR, owned by the postgres user; the machine's own server
# is not touched.
#
#   scripts/replica_cluster.sh start    # primary on 127.0.0.1:$PRIMARY_PORT, replica on :$REPLICA_PORT
#   scripts/replica_cluster.sh stop     # stops both (by their data directories)
#   scripts/replica_cluster.sh lag      # replay lag as the primary sees it
#
# Then, for example:
#   BENCH_SERVER=postgres://postgres@127.0.0.1:5434 \
#   REPORTS_DATABASE_URL=postgres://postgres@127.0.0.1:5435/incidentdesk_bench_suite \
#   .venv/bin/python bench/suite.py --only reports
set -eu
DIR=${DIR:-/tmp/incidentdesk-replica}
PRIMARY_PORT=${PRIMARY_PORT:-5434}
REPLICA_PORT=${REPLICA_PORT:-5435}
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
AS_POSTGRES="runuser -u postgres --"
[ "$(id -un)" = postgres ] && AS_POSTGRES=""

start() {
    mkdir -p "$DIR" && chown postgres "$DIR"
    if [ ! -f "$DIR/primary/PG_VERSION" ]; then
        $AS_POSTGRES "$BIN/initdb" -D "$DIR/primary" -U postgres --auth=trust >/dev/null
        cat >>"$DIR/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 4
hot_standby = on
CONF
        echo "host replication postgres 127.0.0.1/32 trust" >>"$DIR/primary/pg_hba.conf"
    fi
    $AS_POSTGRES "$BIN/pg_ctl" -D "$DIR/primary" -l "$DIR/primary.log" -w status >/dev/null 2>&1 ||
        $AS_POSTGRES "$BIN/pg_ctl" -D "$DIR/primary" -l "$DIR/primary.log" -w start >/dev/null
    if [ ! -f "$DIR/replica/PG_VERSION" ]; then
        # -R writes standby.signal and primary_conninfo: the copy starts as a hot standby that streams.
        $AS_POSTGRES "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DIR/replica" -R -X stream
        echo "port = $REPLICA_PORT" >>"$DIR/replica/postgresql.conf"
    fi
    $AS_POSTGRES "$BIN/pg_ctl" -D "$DIR/replica" -l "$DIR/replica.log" -w status >/dev/null 2>&1 ||
        $AS_POSTGRES "$BIN/pg_ctl" -D "$DIR/replica" -l "$DIR/replica.log" -w start >/dev/null
    psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -Atc "SELECT 'replica in recovery: ' || pg_is_in_recovery()"
    psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atc \
        "SELECT 'streaming to ' || client_addr || ': ' || state FROM pg_stat_replication"
}

stop() {
    for node in replica primary; do
        [ -f "$DIR/$node/PG_VERSION" ] && $AS_POSTGRES "$BIN/pg_ctl" -D "$DIR/$node" -m fast stop >/dev/null 2>&1 || true
    done
}

lag() {
    psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atc \
        "SELECT application_name, state, replay_lag FROM pg_stat_replication"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    lag) lag ;;
    *) echo "usage: $0 start|stop|lag" >&2; exit 2 ;;
esac
