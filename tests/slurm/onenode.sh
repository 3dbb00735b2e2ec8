#!/usr/bin/env bash
# A private one-node SLURM cluster on 127.0.0.1 for tests (Debian's
# slurm-wlm and munge, run as root).  Everything lives in DIR: its own munge
# key and socket, slurm.conf with free ports, state, spool, logs and pid
# files, so it neither needs nor touches a site's /etc/slurm or munged.
#
#   onenode.sh start DIR   start munged, slurmctld and slurmd; wait until the
#                          node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   onenode.sh stop DIR    stop the three daemons by the pids in DIR
#
# The configuration is the one DESIGN-NOTES names as working here:
# select/cons_tres, proctrack/linuxproc, task/none, a `debug` partition.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
node=zllmnode

die() { echo "onenode: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_conf() {
  local ctld_port slurmd_port hw
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
  # the node's real CPUs and memory, as slurmd sees them (else it drains itself)
  hw=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //')
  cat >"$dir/slurm.conf" <<EOF
ClusterName=zllmtest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$node NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start_munge() {
  mkdir -p "$dir/munge"
  chmod 700 "$dir/munge"
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  # munged checks that no one else can write its directories; --force lets
  # it run as root, as Debian's own unit does not
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" \
    || die "munged did not start (see $dir/log/munged.log)"
  for _ in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && return; sleep 0.1; done
  die "munged left no socket at $dir/munge/munge.socket"
}

wait_idle() {
  local state=""
  for _ in $(seq 150); do
    state=$(SLURM_CONF="$dir/slurm.conf" sinfo -h -n "$node" -o '%T' 2>/dev/null || true)
    case "$state" in idle*|mixed*|allocated*) return 0 ;; esac
    sleep 0.2
  done
  echo "onenode: node $node is '$state' after 30 s; logs:" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  return 1
}

start() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
    die "slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)"
  [ "$(id -u)" -eq 0 ] || die "the one-node cluster runs its daemons as root"
  rm -rf "$dir"
  mkdir -p "$dir"/{state,spool,log}
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  write_conf
  start_munge
  slurmctld -f "$dir/slurm.conf" -i || die "slurmctld did not start (see $dir/log/slurmctld.log)"
  slurmd -f "$dir/slurm.conf" -N "$node" || die "slurmd did not start (see $dir/log/slurmd.log)"
  wait_idle || { stop; exit 1; }
  echo "export SLURM_CONF=$dir/slurm.conf"
}

stop_pidfile() { # stop_pidfile NAME FILE
  local pid
  [ -s "$2" ] || return 0
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "onenode: $1 ($pid) ignored SIGTERM for 10 s; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  stop_pidfile slurmd "$dir/slurmd.pid"
  stop_pidfile slurmctld "$dir/slurmctld.pid"
  stop_pidfile munged "$dir/munge/munged.pid"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
