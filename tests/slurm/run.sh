#!/usr/bin/env bash
# `make test-slurm`: start the private one-node cluster, run the slurm-marked tests
# against it, stop it again, and exit with pytest's status.
#
#   HPCSPIN_SLURM_TIMEOUT=s      bound on the pytest run (default 240 s)
#   HPCSPIN_SLURM_KEEP=1         leave the cluster running afterwards
#   HPCSPIN_SLURM_BASETEMP=dir   where the jobs run and their logs stay afterwards
#                                (default /tmp/hpcspin-slurm-tests, emptied at start)
#   HPCSPIN_SLURM_PARTITION=p    use partition p of the SLURM the environment points at
#                                (a real site's test partition, on purpose) instead of
#                                the private cluster; needs HPCSPIN_SLURM_WORKDIR (shared)
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/slurm
PY=${HPCSPIN_PYTHON:-.venv/bin/python}
t0=$(date +%s)

started=0
if [[ -z ${HPCSPIN_SLURM_PARTITION:-} ]]; then
	if ! bash $HERE/cluster.sh status >/dev/null 2>&1; then
		started=1
	fi
	if [[ $started == 1 && -z ${HPCSPIN_SLURM_KEEP:-} ]]; then
		trap 'bash tests/slurm/cluster.sh stop' EXIT # also after a failed start
	fi
	bash $HERE/cluster.sh start || exit 1
	eval "$(bash $HERE/cluster.sh env)"
fi
export HPCSPIN_SLURM_SUITE=1 PYTHONUNBUFFERED=1

timeout --kill-after=10 "${HPCSPIN_SLURM_TIMEOUT:-240}" \
	"$PY" -m pytest -p no:cacheprovider -m slurm $HERE -v \
	--basetemp="${HPCSPIN_SLURM_BASETEMP:-/tmp/hpcspin-slurm-tests}" "$@"
rc=$?
[[ $rc == 124 || $rc == 137 ]] && echo "run.sh: the SLURM suite exceeded its time limit" >&2
echo "run.sh: SLURM suite exit $rc in $(($(date +%s) - t0)) s" >&2
exit $rc
