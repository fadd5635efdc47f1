#!/usr/bin/env bash
# A private one-node SLURM cluster for testing jobs/ (Debian 12, SLURM 22.05, as root).
#
#   bash tests/slurm/cluster.sh start    install if needed, start, wait until the node is idle
#   bash tests/slurm/cluster.sh stop     cancel its jobs, stop the daemons it started
#   bash tests/slurm/cluster.sh status   running or not (exit 0 / 3)
#   eval "$(bash tests/slurm/cluster.sh env)"   point sbatch/squeue at it (SLURM_CONF)
#
# Everything lives in $HPCSPIN_SLURM_STATE (default /var/lib/hpcspin-slurm): its own
# slurm.conf (cluster name hpcspin-test, ports 6917/6918 unless HPCSPIN_SLURM_PORT is
# set), state, spool, logs, pid files and a marker file. It never reads or writes
# /etc/slurm and refuses to start next to SLURM daemons it did not start.
set -euo pipefail

STATE=${HPCSPIN_SLURM_STATE:-/var/lib/hpcspin-slurm}
CONF=$STATE/slurm.conf
MARKER=$STATE/hpcspin-test.marker
CLUSTER=hpcspin-test
PARTITION=hpcspin
NODE=hpcspin-node1
PORT=${HPCSPIN_SLURM_PORT:-6917}
PKGS=(munge slurm-wlm slurmctld slurmd slurm-client libpmix-dev)
export SLURM_CONF=$CONF

log() { echo "cluster.sh: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# true while pid runs (a zombie waiting for its reaper counts as gone)
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

# pid from a pid file, printed only if that process is alive and has the expected name
live_pid() {
	local file=$1 name=$2 pid
	[[ -r $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
	alive "$pid" || return 1
	echo "$pid"
}

is_ours_running() {
	[[ -f $MARKER ]] &&
		live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null &&
		live_pid "$STATE/slurmd.pid" slurmd >/dev/null
}

node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1; }

install_packages() {
	dpkg -s "${PKGS[@]}" >/dev/null 2>&1 && return 0
	[[ $(id -u) == 0 ]] || die "SLURM is not installed and installing it needs root"
	log "installing ${PKGS[*]} (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${PKGS[@]}" >/dev/null
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
	if munge_works; then
		return 0 # a munged is already serving the default socket; use it, never stop it
	fi
	install -d -o munge -g munge -m 0755 /run/munge
	if [[ ! -s /etc/munge/munge.key ]]; then
		log "creating /etc/munge/munge.key"
		install -d -o munge -g munge -m 0700 /etc/munge
		runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
	fi
	runuser -u munge -- /usr/sbin/munged
	echo yes >"$STATE/munged.ours"
	local i
	for i in $(seq 50); do
		munge_works && return 0
		sleep 0.1
	done
	die "munged does not answer (munge -n | unmunge)"
}

write_conf() {
	local host
	host=$(hostname -s)
	mkdir -p "$STATE"/{ctld,spool,log}
	cat >"$CONF" <<EOF
# Written by tests/slurm/cluster.sh: a private test cluster; not a site configuration.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
KillWait=5
MinJobAge=900
ReturnToService=2
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
	if is_ours_running && [[ $(node_state) =~ ^(idle|mix|alloc) ]]; then
		log "already running (SLURM_CONF=$CONF)"
		return 0
	fi
	[[ $(id -u) == 0 ]] || die "starting the test cluster needs root (munged, /run/slurm, apt-get)"
	install_packages
	# Never run next to SLURM daemons we did not start (a real site's, or a stale run).
	local p pid ours
	for p in slurmctld slurmd; do
		ours=$(live_pid "$STATE/$p.pid" "$p") || ours=""
		for pid in $(pgrep -x "$p"); do
			if alive "$pid" && [[ $pid != "$ours" ]]; then
				die "a $p that this script did not start is running (pid $pid); refusing"
			fi
		done
	done
	is_ours_running || stop_daemons quiet
	mkdir -p "$STATE"
	echo "cluster=$CLUSTER started=$(date -Is) by=tests/slurm/cluster.sh" >"$MARKER"
	start_munge
	write_conf
	install -d -o slurm -g slurm -m 0755 /run/slurm
	if ! live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null; then
		/usr/sbin/slurmctld -c -f "$CONF" # -c: forget jobs of an earlier run
	fi
	if ! live_pid "$STATE/slurmd.pid" slurmd >/dev/null; then
		/usr/sbin/slurmd -f "$CONF" -N "$NODE"
	fi
	local i st=""
	for i in $(seq 120); do # at most ~60 s
		st=$(node_state)
		[[ $st == idle ]] && break
		if [[ $st =~ ^(down|drain|fail) ]]; then
			scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
		fi
		sleep 0.5
	done
	if [[ $st != idle ]]; then
		log "node state '$st' after 60 s; last log lines:"
		tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
		die "the test cluster did not come up"
	fi
	log "running: cluster $CLUSTER, partition $PARTITION, node $NODE idle (SLURM_CONF=$CONF)"
}

# Stop the daemons whose pid files are ours; $1=quiet skips the job cancel.
stop_daemons() {
	local p pid i
	for p in slurmd slurmctld; do
		pid=$(live_pid "$STATE/$p.pid" "$p") || continue
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 100); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	if [[ -f $STATE/munged.ours ]]; then
		if pid=$(live_pid /run/munge/munged.pid munged); then
			kill -TERM "$pid" 2>/dev/null || true
			for i in $(seq 50); do
				alive "$pid" || break
				sleep 0.1
			done
		fi
		rm -f "$STATE/munged.ours"
	fi
	[[ ${1:-} == quiet ]] || log "stopped"
}

stop() {
	if [[ ! -f $MARKER ]]; then
		log "no test cluster of ours in $STATE; nothing to stop"
		return 0
	fi
	if is_ours_running; then
		# Jobs of this private cluster only (its own SLURM_CONF), then their step daemons.
		scancel --full --quiet -p "$PARTITION" 2>/dev/null || true
		local i
		for i in $(seq 40); do
			[[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
			sleep 0.25
		done
	fi
	stop_daemons
	rm -f "$MARKER"
}

status() {
	if is_ours_running; then
		echo "running: cluster $CLUSTER, node $NODE $(node_state), SLURM_CONF=$CONF"
		return 0
	fi
	echo "not running"
	return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
env)
	echo "export SLURM_CONF=$CONF"
	echo "export HPCSPIN_SLURM_MARKER=$MARKER"
	;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
