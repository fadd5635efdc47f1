# hpcspin: one-command set-up, tests, demo and benchmarks.
# `make test` and `make demo` build everything they need first (Debian 12, as root);
# each set-up step leaves a stamp in .make-stamps/ and is skipped once done.

SHELL       := /bin/bash
VENV        := .venv
PY          := $(VENV)/bin/python
STAMPS      := .make-stamps
export PETSC_DIR ?= /usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-complex
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
export OMP_NUM_THREADS ?= 1
export PYTHONUNBUFFERED := 1
MPIRUN      := timeout --kill-after=10 600 mpirun --oversubscribe --bind-to none
SYS_PKGS    := openmpi-bin libopenmpi-dev python3-mpi4py python3-h5py-mpi python3-petsc4py \
               python3-petsc4py-complex python3-scipy python3-matplotlib python3-venv \
               python3-pip python3-dev
TORCH_VER   := 2.13.0
# numba: compiled NEGF chain kernels (optional at run time: numpy fallback); this version
# installs against Debian's numpy 1.24 without upgrading it.
NUMBA_VER   := 0.59.1
PYTEST      := $(PY) -m pytest -p no:cacheprovider

.PHONY: setup test test-serial test-mpi lint demo bench test-slurm clean

setup: $(STAMPS)/project

$(STAMPS)/system:
	@mkdir -p $(STAMPS)
	@if ! dpkg -s $(SYS_PKGS) >/dev/null 2>&1; then \
	  echo "== installing system packages (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(SYS_PKGS) >/dev/null; fi
	@touch $@

$(STAMPS)/venv: $(STAMPS)/system
	@echo "== creating $(VENV) (Debian's python, system site packages)"
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q torch==$(TORCH_VER)
	$(PY) -m pip install -q numba==$(NUMBA_VER)
	@touch $@

$(STAMPS)/project: $(STAMPS)/venv setup.cfg pyproject.toml
	@echo "== installing hpcspin (editable, dev extras)"
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	$(PY) -m pip install -q 'pytest>=7' 'hypothesis>=6' 'ruff>=0.4'
	$(PY) -m pip install -q ase==3.29.0 ovf==0.4.3  # independent readers of the exports (tests)
	$(PY) -c "import hpcspin, torch, mpi4py, h5py, scipy, numpy; print('hpcspin', hpcspin.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
	@touch $@

lint: setup
	$(VENV)/bin/ruff check hpcspin tests bench
	$(VENV)/bin/ruff format --check hpcspin tests bench

test-serial: setup
	$(PYTEST) tests/unit tests/regression -q

test-mpi: setup
	@for n in 2 4; do \
	  echo "== parallel suite at $$n ranks"; \
	  $(MPIRUN) -n $$n $(PY) tests/parallel/run_pytest.py tests/parallel -q -x || exit 1; \
	done

test: lint test-serial test-mpi

demo: setup
	$(PY) -m hpcspin.demo

bench: setup
	$(PY) bench/run_all.py

test-slurm: setup
	bash tests/slurm/run.sh

clean:
	rm -rf $(STAMPS) $(VENV) *.egg-info
