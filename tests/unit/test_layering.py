"""The layering rules (README, "Layout"), checked on the import statements."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2] / "hpcspin"
HEAVY = {"mpi4py", "torch", "petsc4py", "h5py"}
KERNELS = [
    "lattice",
    "hamiltonian",
    "negf/leads.py",
    "negf/rgf.py",
    "negf/contour.py",
    "dynamics/llg.py",
    "dynamics/integrators.py",
]


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def modules():
    return [p for p in ROOT.rglob("*.py")]


def rel(p):
    return p.relative_to(ROOT).as_posix()


def top(name):
    return name.split(".")[0]


def test_kernels_import_no_heavy_stack():
    for p in modules():
        if any(rel(p) == k or rel(p).startswith(k + "/") for k in KERNELS):
            bad = {top(m) for m in imports(p)} & HEAVY
            assert not bad, f"kernel {rel(p)} imports {bad}"


def test_only_ml_imports_torch():
    for p in modules():
        if "torch" in {top(m) for m in imports(p)}:
            assert rel(p).startswith("ml/"), f"{rel(p)} imports torch"


def test_only_negf_petsc_imports_petsc4py():
    for p in modules():
        if "petsc4py" in {top(m) for m in imports(p)}:
            assert rel(p) == "negf/petsc.py", f"{rel(p)} imports petsc4py"


def test_only_io_imports_h5py():
    for p in modules():
        if "h5py" in {top(m) for m in imports(p)}:
            assert rel(p).startswith("io/"), f"{rel(p)} imports h5py"


def test_deck_imports_no_physics():
    physics = {"lattice", "hamiltonian", "negf", "ml", "dynamics", "io", "parallel", "tasks"}
    for p in (ROOT / "deck").rglob("*.py"):
        for m in imports(p):
            parts = m.split(".")
            assert not (parts[0] == "hpcspin" and len(parts) > 1 and parts[1] in physics), (
                f"{rel(p)} imports {m}"
            )


def test_comm_world_only_in_context_and_cli():
    allowed = {"parallel/context.py", "cli.py", "__main__.py"}
    for p in modules():
        if re.search(r"\bCOMM_WORLD\b", p.read_text()):
            assert rel(p) in allowed, f"{rel(p)} mentions COMM_WORLD"


def test_checked_modules_exist():
    # The rules above must have something to bite on.
    assert (ROOT / "parallel/context.py").exists() and (ROOT / "lattice").exists()
    assert len(modules()) > 10
