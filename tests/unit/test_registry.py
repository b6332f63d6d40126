"""The algorithm registry: names resolve lazily to the classes that carry them."""
import subprocess
import sys

import pytest

from deeprl.algos import ALGORITHMS, FAMILIES


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_registered_name_is_its_class_name(name):
    cls = ALGORITHMS[name]
    assert cls.name == name
    assert cls.__module__ == ALGORITHMS.module_name(name)
    assert cls.__module__.startswith(f"deeprl.algos.{ALGORITHMS.family(name)}.")


def test_unknown_name_is_a_key_error():
    with pytest.raises(KeyError):
        ALGORITHMS["ppo2"]
    assert "ppo2" not in ALGORITHMS and "ppo" in ALGORITHMS


def test_families_partition_the_names():
    names = [n for fam in FAMILIES.values() for n in fam]
    assert len(names) == len(set(names)) == len(ALGORITHMS)


def test_a_ppo_import_does_not_import_other_families():
    code = ("import sys; from deeprl import PPO; import deeprl.cli; "
            "bad = [m for m in sys.modules if m.startswith(('deeprl.algos.planning', 'deeprl.algos.tabular', "
            "'deeprl.algos.imitation', 'deeprl.algos.offpolicy', 'deeprl.planning', 'deeprl.tabular', "
            "'deeprl.experts', 'h5py', 'matplotlib', 'torch._dynamo'))]; print(bad); assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
