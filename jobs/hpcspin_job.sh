# shellcheck shell=bash
# Shared body of the hpcspin SLURM templates (jobs/*.sbatch source this file).
#
#   hpcspin_job TASK DECK [hpcspin options...]
#
# 1. `python -m hpcspin DECK --check --ranks $SLURM_NTASKS`: a bad deck ends the job at
#    once (exit 2, state FAILED), with the deck's problems in the job log.
# 2. `srun --mpi=pmix` one rank per task, in the background, so that the batch shell can
#    forward SLURM's warning (--signal=B:USR1@T reaches only this shell) to the ranks.
# 3. The run's exit status decides what happens next:
#      0   finished                          -> job COMPLETED, nothing resubmitted
#      75  warned (SIGUSR1), checkpointed    -> next segment submitted with
#                                               --dependency=afterany:$SLURM_JOB_ID;
#                                               jobs waiting for this one now wait for it
#      75  after SIGTERM without a warning   -> not resubmitted (scancel, or no --signal)
#      1/2 crash / user error                -> job FAILED with that status
#    After a signal the launcher's status can differ from the ranks' (mpirun itself
#    signalled returns 1 while every rank checkpointed and exited 75): each rank appends
#    "rank status" to $HPCSPIN_EXIT_FILE as it exits, and when every rank did so with
#    the same 0 or 75, that status counts.
#
# Environment (all optional):
#   HPCSPIN_PYTHON        interpreter (default: <project>/.venv/bin/python)
#   HPCSPIN_MAX_SEGMENTS  most segments of one chain (default 10)
#   HPCSPIN_SEGMENT       this segment's number (set by the resubmission; default 1)
#   HPCSPIN_SRUN_FLAGS    extra srun flags (e.g. "--gpu-bind=closest")
#   HPCSPIN_REMIND        seconds between repeated warnings to ranks still running (10)

_hj_say() { echo "hpcspin-job: $*"; }

# One field of `scontrol show job -o` for this job (empty if unknown).
_hj_job_field() {
	scontrol show job -o "$SLURM_JOB_ID" 2>/dev/null | tr ' ' '\n' |
		sed -n "s/^$1=//p" | head -n1
}

_hj_on_signal() {
	local sig=$1
	_hj_trapped=1
	_hj_signalled=1
	if [[ $sig == USR1 ]]; then
		_hj_warned=1
		_hj_say "$(date '+%F %T') warned by SLURM (SIGUSR1): the ranks checkpoint and stop"
	else
		_hj_say "$(date '+%F %T') got SIG$sig: the ranks checkpoint and stop"
	fi
	if [[ -n ${_hj_srun_pid:-} ]]; then
		kill "-$sig" "$_hj_srun_pid" 2>/dev/null || true
	fi
}

# Wait for srun; its exit status in _hj_rc. A trapped signal interrupts `wait` (status
# 128+n while srun still runs), so wait again. Once warned, repeat the warning every
# HPCSPIN_REMIND seconds (default 10) until the ranks stop: one that came before a rank
# had its handler was ignored.
_hj_wait_srun() {
	local t=0 n=0
	while :; do
		_hj_trapped=0
		if [[ $_hj_warned == 1 ]] && kill -0 "$_hj_srun_pid" 2>/dev/null; then
			sleep 1
			t=$((t + 1))
			if ((t % ${HPCSPIN_REMIND:-10} == 0)) && kill -0 "$_hj_srun_pid" 2>/dev/null; then
				n=$((n + 1))
				if ((n <= 3)); then
					_hj_say "$(date '+%F %T') ranks still running ${t} s after the warning:" \
						"SIGUSR1 again$( ((n == 3)) && echo ' (further repeats not logged)')"
				fi
				kill -USR1 "$_hj_srun_pid" 2>/dev/null || true
			fi
			continue
		fi
		wait "$_hj_srun_pid"
		_hj_rc=$?
		[[ $_hj_trapped == 1 ]] || return 0
	done
}

# After a signal, the ranks' own statuses when every rank recorded the same 0 or 75 in
# the exit file and the launcher says otherwise (e.g. mpirun, signalled itself, returns
# 1). A rank that was killed or aborted records nothing: then the launcher's status
# stands. Sets _hj_rc.
_hj_rank_status() {
	local n=$1 file=$2 codes ranks
	[[ $_hj_signalled == 1 && $_hj_rc != 0 && $_hj_rc != 75 && -s $file ]] || return 0
	codes=$(awk '{print $2}' "$file" | sort -u)
	ranks=$(awk '{print $1}' "$file" | sort -u | wc -l)
	if [[ $ranks == "$n" && ($codes == 75 || $codes == 0) ]]; then
		_hj_say "the launcher returned $_hj_rc after the signal, but all $n ranks exited" \
			"$codes: taking $codes"
		_hj_rc=$codes
	fi
}

# Submit the next segment of the chain; carries the allocation's shape, the deck and
# the hpcspin options. Prints the new job id.
_hj_resubmit() {
	local script=$1 next=$2
	shift 2
	local opts=(--parsable "--dependency=afterany:$SLURM_JOB_ID" "--chdir=$PWD"
		"--job-name=$SLURM_JOB_NAME" "--ntasks=$SLURM_NTASKS"
		"--cpus-per-task=${SLURM_CPUS_PER_TASK:-1}" "--nodes=$SLURM_JOB_NUM_NODES")
	local v
	v=$(_hj_job_field TimeLimit) && [[ -n $v ]] && opts+=("--time=$v")
	[[ -n ${SLURM_JOB_PARTITION:-} ]] && opts+=("--partition=$SLURM_JOB_PARTITION")
	[[ -n ${SLURM_JOB_ACCOUNT:-} ]] && opts+=("--account=$SLURM_JOB_ACCOUNT")
	[[ -n ${SLURM_JOB_QOS:-} ]] && opts+=("--qos=$SLURM_JOB_QOS")
	[[ -n ${SLURM_GPUS_PER_TASK:-} ]] && opts+=("--gpus-per-task=$SLURM_GPUS_PER_TASK")
	# One log for the whole chain: later segments append to the first one's file.
	local out err
	out=$(_hj_job_field StdOut)
	err=$(_hj_job_field StdErr)
	if [[ -n $out ]]; then
		opts+=("--output=$out" --open-mode=append)
		[[ -n $err && $err != "$out" ]] && opts+=("--error=$err")
	fi
	(
		# The new job gets its own SLURM_* variables; do not leak this job's.
		for v in $(compgen -e SLURM_); do
			[[ $v == SLURM_CONF ]] || unset "$v"
		done
		export HPCSPIN_SEGMENT=$next HPCSPIN_MAX_SEGMENTS=$_hj_max
		sbatch "${opts[@]}" "$script" "$@"
	)
}

# Point the user's pending jobs that wait for this segment (e.g. a training job
# submitted with --dependency=afterok:<first segment>) at the new segment instead, so
# that they wait for the end of the whole chain, not of this segment (which ends
# COMPLETED once it has resubmitted).
_hj_retarget_dependents() {
	local me=$SLURM_JOB_ID new=$1 id dep cleaned newdep
	while IFS='|' read -r id dep; do
		[[ $id == "$new" || $dep != *":$me"* ]] && continue
		cleaned=$(sed -E 's/\([a-z_]+\)//g' <<<"$dep")
		newdep=$(sed -E "s/:$me([^0-9]|\$)/:$new\1/g" <<<"$cleaned")
		[[ $newdep == "$cleaned" ]] && continue
		if scontrol update JobId="$id" Dependency="$newdep" 2>/dev/null; then
			_hj_say "job $id now waits for job $new instead of job $me ($newdep)"
		else
			_hj_say "warning: could not point job $id ($dep) at job $new"
		fi
	done < <(squeue -h -u "$(id -un)" -t PENDING -o '%i|%E' 2>/dev/null)
}

hpcspin_job() {
	local task=$1
	shift
	if [[ $# -lt 1 || ! -f $1 ]]; then
		_hj_say "usage: sbatch $(basename "${HPCSPIN_JOB_SCRIPT:-jobs/$task.sbatch}") DECK.toml [--set section.key=value ...]"
		_hj_say "error: deck '${1:-}' not found (working directory $PWD)"
		exit 2
	fi
	local deck
	deck=$(realpath -- "$1")  # -- : a name may start with -
	shift
	local args=("$@")
	# Set by the template: the submitted script's absolute path (not the spool copy).
	local script=${HPCSPIN_JOB_SCRIPT:-} root
	root=$(dirname "$(dirname "${script:-$PWD/jobs/x}")")
	local py=${HPCSPIN_PYTHON:-$root/.venv/bin/python}
	local seg=${HPCSPIN_SEGMENT:-1}
	_hj_max=${HPCSPIN_MAX_SEGMENTS:-10}
	local again
	again="sbatch $(printf '%q ' "$script" "$deck" "${args[@]}")"
	local ntasks=${SLURM_NTASKS:-1} cpt=${SLURM_CPUS_PER_TASK:-1}
	_hj_warned=0
	_hj_signalled=0
	_hj_srun_pid=""
	trap '_hj_on_signal USR1' USR1
	trap '_hj_on_signal TERM' TERM

	export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cpt}
	# A checkout's jobs/ runs that checkout's package, installed or not.
	if [[ -f $root/hpcspin/__init__.py ]]; then
		export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
	fi
	export PYTHONUNBUFFERED=1
	# Debian's petsc4py finds PETSc through PETSC_DIR at interpreter start-up.
	if [[ -z ${PETSC_DIR:-} && -d /usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-complex ]]; then
		export PETSC_DIR=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-complex
	fi

	_hj_say "$(date '+%F %T') job ${SLURM_JOB_ID:-none} segment $seg/$_hj_max: $task $deck ${args[*]}"
	_hj_say "ranks $ntasks x $cpt cpu(s), nodes ${SLURM_JOB_NODELIST:-?}, python $py"
	if [[ ! -x $py ]]; then
		_hj_say "error: no interpreter at $py (set HPCSPIN_PYTHON=/path/to/python)"
		exit 2
	fi

	# 1. Validate on this one process before asking for the ranks.
	local out rc=0
	out=$("$py" -m hpcspin "$deck" --check --ranks "$ntasks" "${args[@]}") || rc=$?
	[[ -n $out ]] && echo "$out"
	if [[ $rc != 0 ]]; then
		_hj_say "the deck failed --check (exit $rc): not started, not resubmitted"
		exit "$rc"
	fi
	local found
	found=$(sed -n 's/.* task=\([^ ]*\).*/\1/p' <<<"$out")
	if [[ -n $found && $found != "$task" ]]; then
		_hj_say "error: this template runs '$task' decks; $deck has task = '$found'" \
			"(use jobs/$found.sbatch)"
		exit 2
	fi

	# 2. The run. A warning that came during the check leaves no time for it.
	rc=75
	if [[ $_hj_warned == 1 ]]; then
		_hj_say "warned before the run started: passing on to the next segment"
	else
		# Each rank starts with SIGUSR1 ignored (kept across exec) until hpcspin installs
		# its handler: SLURM may send the warning early (even seconds after the start),
		# and the default action would kill a rank that is still importing.
		# On a file system every node sees (the working directory), one per job.
		export HPCSPIN_EXIT_FILE=$PWD/.hpcspin-exit.${SLURM_JOB_ID:-$$}
		rm -f "$HPCSPIN_EXIT_FILE"
		# shellcheck disable=SC2086  # HPCSPIN_SRUN_FLAGS is a list of words
		srun --mpi=pmix --kill-on-bad-exit=1 --ntasks="$ntasks" --cpus-per-task="$cpt" \
			${HPCSPIN_SRUN_FLAGS:-} /bin/sh -c 'trap "" USR1; exec "$@"' hpcspin-rank \
			"$py" -m hpcspin "$deck" "${args[@]}" &
		_hj_srun_pid=$!
		_hj_wait_srun
		_hj_rank_status "$ntasks" "$HPCSPIN_EXIT_FILE"
		rm -f "$HPCSPIN_EXIT_FILE"
		rc=$_hj_rc
	fi

	# 3. What the exit status means.
	case $rc in
	0)
		_hj_say "$(date '+%F %T') finished (segment $seg)"
		exit 0
		;;
	75)
		if [[ $_hj_warned != 1 ]]; then
			_hj_say "the ranks stopped on a signal this job was not warned of (scancel, the" \
				"time limit, or srun ending them after one failed): not resubmitted;" \
				"to continue: $again"
			exit 75
		fi
		if ((seg >= _hj_max)); then
			_hj_say "checkpointed, but this was segment $seg of at most $_hj_max" \
				"(HPCSPIN_MAX_SEGMENTS): not resubmitted; to continue: $again"
			exit 75
		fi
		if [[ -z $script || ! -f $script ]]; then
			_hj_say "error: cannot find this job script to resubmit it"
			exit 75
		fi
		local next
		if next=$(_hj_resubmit "$script" $((seg + 1)) "$deck" "${args[@]}"); then
			_hj_say "$(date '+%F %T') checkpointed; segment $((seg + 1)) submitted as job" \
				"$next (starts after job $SLURM_JOB_ID ends)"
			_hj_retarget_dependents "$next"
			exit 0
		fi
		_hj_say "error: resubmission failed; to continue: $again"
		exit 75
		;;
	*)
		_hj_say "$(date '+%F %T') the run failed (exit $rc): not resubmitted"
		exit "$rc"
		;;
	esac
}
