#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the workflow's SLURM tests (Debian 12, root,
# no systemd needed). Follows ../shared/reference/slurm-local.md (tested recipe).
#
#   scripts/slurm-local.sh start    install (apt-get, only what is missing) and start munged, slurmctld,
#                                   slurmd; idempotent: does nothing if the cluster already answers
#   scripts/slurm-local.sh stop     stop what `start` started (by pid file, newest first)
#   scripts/slurm-local.sh status   print sinfo, exit 0 if the node is usable
#
# Environment: FAKE_GPUS=N (default 2, at most 4) declares N fake GPUs (gres on /dev/null) so `--gpus=N` jobs
# schedule; PARTITION (default debug); WITH_DBD=1 also starts MariaDB + slurmdbd so that sacct works
# (without it, profiles must set `slurm-status-command: squeue`).
set -euo pipefail
WITH_DBD=${WITH_DBD:-0}
FAKE_GPUS=${FAKE_GPUS:-2}
PARTITION=${PARTITION:-debug}
STATE_FILE=/run/slurm/slurm-local.started # what `start` started, one pid file per line
export DEBIAN_FRONTEND=noninteractive
log() { echo "[slurm-local] $*" >&2; }
wait_for() { # wait_for <tries> <sleep> cmd...
    local n=$1 s=$2 i
    shift 2
    for ((i = 0; i < n; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep "$s"
    done
    return 1
}
cluster_up() {
    command -v scontrol >/dev/null 2>&1 || return 1
    scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'
}
note_started() { mkdir -p /run/slurm && echo "$1" >>"$STATE_FILE"; }

start() {
    if [ "$(id -u)" != 0 ]; then
        log "must run as root (apt-get, daemons)"
        exit 1
    fi
    # ---- 1. packages: apt only if something is missing ----
    local pkgs="munge slurmctld slurmd slurm-client" missing="" p
    [ "$WITH_DBD" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        log "apt-get install$missing"
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
    # ---- 2. already up? leave it alone ----
    if cluster_up; then
        log "cluster already up"
        sinfo
        return 0
    fi
    # ---- 3. config ----
    local H NCPU MEM ACCT GRES_NODE="" GRES_TYPES="" g
    H=$(hostname -s)
    NCPU=$(nproc)
    MEM=$(($(free -m | awk '/^Mem:/{print $2}') - 1024))
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm /run/munge
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm /run/slurm
    chown munge:munge /run/munge
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* # no stale node state (a DRAIN survives restarts)
    : >"$STATE_FILE"
    if [ "$WITH_DBD" = 1 ]; then
        ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
    else
        ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi
    if [ "$FAKE_GPUS" -gt 0 ]; then
        GRES_NODE="Gres=gpu:${FAKE_GPUS}"
        GRES_TYPES="GresTypes=gpu"
        {
            echo "AutoDetect=off"
            # one distinct device file per fake GPU (slurmd refuses a name twice); nothing opens them
            local devs=(/dev/null /dev/zero /dev/full /dev/urandom)
            for ((g = 0; g < FAKE_GPUS && g < ${#devs[@]}; g++)); do echo "NodeName=${H} Name=gpu File=${devs[g]}"; done
        } >/etc/slurm/gres.conf
    else
        rm -f /etc/slurm/gres.conf
    fi
    # EnforcePartLimits=ALL: a job asking for more than the node has is rejected at once instead of
    # pending forever. MinJobAge=300 keeps finished jobs visible to `squeue --states=all`.
    cat >/etc/slurm/slurm.conf <<EOF
ClusterName=localcluster
SlurmctldHost=${H}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
${GRES_TYPES}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
${ACCT}
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
EnforcePartLimits=ALL
KillWait=5
InactiveLimit=0
Waittime=0
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=${H} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${MEM} ${GRES_NODE} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${H} Default=YES MaxTime=INFINITE State=UP
EOF
    # ---- 4. munge ----
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    if ! (munge -n | unmunge) >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged # daemonizes; pid in /run/munge/munged.pid
        note_started /run/munge/munged.pid
        wait_for 40 0.25 sh -c 'munge -n | unmunge' || {
            log "munged did not come up"
            exit 1
        }
    fi
    # ---- 5. optional accounting: MariaDB + slurmdbd ----
    if [ "$WITH_DBD" = 1 ]; then
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        if ! mariadb-admin ping >/dev/null 2>&1; then
            setsid nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
                --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
                >/var/log/slurm/mariadb.log 2>&1 </dev/null &
            note_started /run/mysqld/mysqld.pid
            wait_for 60 0.25 mariadb-admin ping || {
                log "mariadb did not come up"
                exit 1
            }
        fi
        mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
        cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmpw
EOF
        chown slurm:slurm /etc/slurm/slurmdbd.conf
        chmod 600 /etc/slurm/slurmdbd.conf # slurmdbd refuses a readable config
        /usr/sbin/slurmdbd
        note_started /run/slurm/slurmdbd.pid
        wait_for 60 0.25 sacctmgr -n show cluster || {
            log "slurmdbd did not come up"
            tail /var/log/slurm/slurmdbd.log
            exit 1
        }
    fi
    # ---- 6. slurmctld + slurmd (both daemonize; pids in /run/slurm) ----
    /usr/sbin/slurmctld
    note_started /run/slurm/slurmctld.pid
    wait_for 40 0.25 scontrol ping || true
    /usr/sbin/slurmd
    note_started /run/slurm/slurmd.pid
    if ! wait_for 60 0.25 sh -c "sinfo -h -o %T | grep -qx idle"; then
        scontrol update nodename="$H" state=resume 2>/dev/null || true
        wait_for 20 0.25 sh -c "sinfo -h -o %T | grep -qx idle" || {
            log "node not idle"
            sinfo -R
            tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log
            exit 1
        }
    fi
    log "up"
    sinfo -o '%P %N %c %m %G %T'
}

stop_pidfile() { # stop_pidfile <pidfile>: SIGTERM, wait, SIGKILL; never by process name
    local f=$1 pid
    [ -s "$f" ] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        log "stopped $(basename "$f" .pid) ($pid)"
    fi
    rm -f "$f"
}

stop() {
    if [ ! -s "$STATE_FILE" ]; then
        log "nothing started by this script is running"
        return 0
    fi
    command -v scancel >/dev/null && scancel --user="$(id -un)" 2>/dev/null || true
    # reverse order of starting
    tac "$STATE_FILE" | while read -r f; do stop_pidfile "$f"; done
    rm -f "$STATE_FILE"
}

status() {
    if cluster_up; then
        sinfo -o '%P %N %c %m %G %T'
        return 0
    fi
    log "no SLURM cluster answers (scripts/slurm-local.sh start)"
    return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
