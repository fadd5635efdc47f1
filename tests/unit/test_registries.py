"""The deck's allowed values are the library's registries (one list of names each)."""

from __future__ import annotations

import dataclasses

import pytest

from hpcspin.deck.schema import SECTIONS, TASKS
from hpcspin.deck.template import TASK_SECTIONS


def choices(section: str, key: str) -> tuple:
    field = {f.name: f for f in dataclasses.fields(SECTIONS[section])}[key]
    return tuple(field.metadata["choices"])


def test_tasks():
    from hpcspin.driver import TASK_MODULES

    assert set(choices("run", "task")) == set(TASKS) == set(TASK_MODULES) == set(TASK_SECTIONS)


def test_lattice_kinds():
    from hpcspin.lattice.geometry import KINDS

    assert set(choices("lattice", "kind")) == set(KINDS)


def test_integrators():
    from hpcspin.dynamics.integrators import INTEGRATORS

    assert set(choices("dynamics", "integrator")) == set(INTEGRATORS)


def test_heads():
    pytest.importorskip("torch")
    from hpcspin.ml.heads import HEADS

    assert set(choices("model", "head")) == set(HEADS)


def test_leads_and_wall_kinds():
    from hpcspin.hamiltonian.textures import WALL_KINDS
    from hpcspin.negf.leads import LEAD_KINDS

    assert set(choices("electrons", "lead")) == set(LEAD_KINDS)
    assert set(choices("spins", "wall_kind")) == set(WALL_KINDS)


def test_every_solver_choice_is_a_registered_solver():
    from hpcspin.negf.solvers import get_solver

    for name in choices("negf", "solver"):
        if name == "petsc":
            pytest.importorskip("petsc4py")
        assert get_solver(name) is not None


def test_datagen_mix_and_training_kinds_name_the_sampler_families():
    from hpcspin.datagen.samplers import FAMILIES, FAMILY_KINDS, KIND_NAMES

    mix = {f.name: f for f in dataclasses.fields(SECTIONS["datagen"])}["mix"]
    assert mix.metadata["length"] == len(FAMILIES) - 1  # snapshots have their own share
    assert "walls, smooth textures, random spins" in mix.metadata["doc"]
    assert FAMILIES[:3] == ("wall", "texture", "random")
    assert sorted(k for kinds in FAMILY_KINDS.values() for k in kinds) == list(
        range(len(KIND_NAMES))
    )
