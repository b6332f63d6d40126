"""Config resolution and validation: keys, types, ranges, aliases, presets, precedence."""
from __future__ import annotations

import dataclasses

import pytest

from deeprl.algos import ALGORITHMS
from deeprl.algos.pg.ppo import PPO, PPOConfig
from deeprl.core import config
from deeprl.core.config import RunConfig, parse_overrides, resolve
from deeprl.core.errors import ConfigError, DeeprlError

ENV = "CartPole-v1"


def ppo(overrides=None, *, env=ENV, preset="none", **kw):
    return resolve("ppo", PPOConfig, env, preset=preset, overrides=overrides, **kw)


def all_keys():
    return sorted(f.name for cls in (RunConfig, PPOConfig) for f in dataclasses.fields(cls))


# -- unknown keys --------------------------------------------------------------------------
def test_unknown_key_names_key_lists_valid_keys_and_suggests():
    with pytest.raises(ConfigError) as e:
        ppo({"n_step": 16})
    msg = str(e.value)
    assert "'n_step'" in msg
    assert "did you mean n_steps" in msg
    for key in all_keys():  # every valid key is listed
        assert key in msg, key
    assert "\n" not in msg  # one line
    assert e.value.exit_code == 2


def test_unknown_key_without_close_match_has_no_suggestion():
    with pytest.raises(ConfigError) as e:
        ppo({"zzzqqq": 1})
    assert "'zzzqqq'" in str(e.value)
    assert "did you mean" not in str(e.value)
    assert "valid keys" in str(e.value)


def test_config_error_is_a_deeprl_error():
    assert issubclass(ConfigError, DeeprlError)


# -- wrong types ---------------------------------------------------------------------------
@pytest.mark.parametrize("key,value", [
    ("n_steps", "abc"),
    ("n_steps", True),
    ("n_steps", [1]),
    ("normalize_advantages", 3),
    ("normalize_advantages", "maybe"),
    ("gamma", [1]),
    ("gamma", "high"),
    ("gamma", True),
    ("learning_rate", "nan"),
    ("activation", 3),
    ("hidden_sizes", 64),
    ("hidden_sizes", [32, "x"]),
    ("hidden_sizes", [32.5]),
    ("num_envs", None),
    ("total_steps", ""),
])
def test_wrong_type_raises_config_error_naming_key(key, value):
    with pytest.raises(ConfigError) as e:
        ppo({key: value})
    assert key in str(e.value)


# -- out of range / invalid choices --------------------------------------------------------
@pytest.mark.parametrize("key,value", [
    ("gamma", 1.5),
    ("gamma", -0.1),
    ("learning_rate", 0),
    ("learning_rate", -1e-3),
    ("clip_range", 0.0),
    ("n_steps", 0),
    ("num_envs", 0),
    ("seed", -1),
    ("hidden_sizes", [64, 0]),
    ("clip_obs", 0),
    ("device", "tpu"),
    ("activation", "swish-ish"),
])
def test_out_of_range_raises_config_error_naming_key(key, value):
    with pytest.raises(ConfigError) as e:
        ppo({key: value})
    assert key in str(e.value)


def test_bad_choice_lists_valid_choices():
    with pytest.raises(ConfigError) as e:
        ppo({"lr_schedule": "cubic"})
    msg = str(e.value)
    assert "lr_schedule" in msg and "'cubic'" in msg
    assert "constant" in msg and "linear" in msg


def test_open_lower_bound_is_stated():
    with pytest.raises(ConfigError, match=r"learning_rate: must be > 0"):
        ppo({"learning_rate": 0})
    _, cfg, _ = ppo({"gamma": 0, "ent_coef": 0})  # closed bounds accept the bound itself
    assert cfg.gamma == 0.0 and cfg.ent_coef == 0.0
    _, cfg, _ = ppo({"gamma": 1})
    assert cfg.gamma == 1.0


# -- coercion ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e5", 100000.0, "100000", 100000, "1.0e5"])
def test_int_accepts_integral_numbers(value):
    run, _, _ = ppo({"total_steps": value})
    assert run.total_steps == 100_000
    assert type(run.total_steps) is int


@pytest.mark.parametrize("value", [2.5, "2.5", "inf", float("nan")])
def test_int_rejects_non_integral(value):
    with pytest.raises(ConfigError, match="total_steps"):
        ppo({"total_steps": value})


def test_float_and_bool_coercion():
    _, cfg, _ = ppo({"learning_rate": "1e-3", "gamma": 1, "normalize_advantages": "false",
                     "ortho_init": "yes", "hidden_sizes": "[32, 16]"})
    assert cfg.learning_rate == pytest.approx(1e-3) and type(cfg.learning_rate) is float
    assert cfg.gamma == 1.0 and type(cfg.gamma) is float
    assert cfg.normalize_advantages is False and cfg.ortho_init is True
    assert cfg.hidden_sizes == (32, 16)


def test_optional_fields_accept_none():
    _, cfg, _ = ppo({"clip_range_vf": "none", "target_kl": None})
    assert cfg.clip_range_vf is None and cfg.target_kl is None
    _, cfg, _ = ppo({"clip_range_vf": "0.2", "target_kl": 0.01})
    assert cfg.clip_range_vf == 0.2 and cfg.target_kl == 0.01
    with pytest.raises(ConfigError, match="target_kl"):
        ppo({"target_kl": "lots"})
    with pytest.raises(ConfigError, match="target_kl"):
        ppo({"target_kl": 0})


# -- aliases -------------------------------------------------------------------------------
def test_aliases_map_to_canonical_fields():
    _, cfg, _ = ppo({"lr": 0.005, "discount": 0.9})
    assert cfg.learning_rate == 0.005
    assert cfg.gamma == 0.9
    assert config.canonical_key((RunConfig, PPOConfig), "lr") == (PPOConfig, "learning_rate")
    assert config.canonical_key((RunConfig, PPOConfig), "num_envs") == (RunConfig, "num_envs")


def test_alias_values_are_validated_under_the_canonical_name():
    with pytest.raises(ConfigError, match="learning_rate"):
        ppo({"lr": 0})
    with pytest.raises(ConfigError, match="gamma"):
        ppo({"discount": 2})


# -- presets -------------------------------------------------------------------------------
def test_default_preset_applies_for_ppo_cartpole():
    run, cfg, source = ppo(preset=None)
    assert cfg.n_steps == 32 and run.num_envs == 8 and cfg.lr_schedule == "linear"
    assert source is not None and source.endswith("CartPole-v1.yaml")
    run2, cfg2, source2 = ppo(preset="auto")
    assert (run2, cfg2, source2) == (run, cfg, source)
    run3, cfg3, _ = ppo(preset="CartPole-v1")  # by name
    assert (run3, cfg3) == (run, cfg)


def test_agent_constructor_uses_default_preset():
    agent = PPO(ENV)
    assert agent.cfg.n_steps == 32 and agent.run.num_envs == 8 and agent.cfg.lr_schedule == "linear"


def test_preset_none_gives_dataclass_defaults():
    run, cfg, source = ppo(preset="none")
    assert source is None
    assert cfg == PPOConfig()
    assert run == RunConfig(env_id=ENV)
    _, cfg_upper, _ = ppo(preset="None")
    assert cfg_upper == PPOConfig()


def test_env_without_preset_gets_defaults():
    run, cfg, source = ppo(env="Pendulum-v1", preset=None)
    assert source is None and cfg == PPOConfig() and run == RunConfig(env_id="Pendulum-v1")


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError) as e:
        ppo(preset="fastest")
    msg = str(e.value)
    assert "'fastest'" in msg and "CartPole-v1" in msg
    assert "CartPole-v1" in config.preset_names("ppo")


def test_yaml_path_preset(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("n_steps: 16\nlr: 0.002\nnum_envs: 3\nhidden_sizes: [8, 8]\n")
    run, cfg, source = ppo(preset=str(p))
    assert cfg.n_steps == 16 and cfg.learning_rate == 0.002 and run.num_envs == 3
    assert cfg.hidden_sizes == (8, 8)
    assert source == str(p)
    assert cfg.batch_size == PPOConfig().batch_size  # untouched keys keep defaults


def test_missing_yaml_preset_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ppo(preset=str(tmp_path / "nope.yaml"))


def test_preset_with_unknown_key_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("n_steps: 16\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError) as e:
        ppo(preset=str(p))
    assert "'learning_rat'" in str(e.value) and "learning_rate" in str(e.value)


@pytest.mark.parametrize("text,match", [
    ("n_steps: abc\n", "n_steps"),
    ("gamma: 3\n", "gamma"),
    ("- 1\n- 2\n", "mapping"),
    ("n_steps: [1\n", "YAML"),
])
def test_invalid_preset_contents(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        ppo(preset=str(p))


def test_empty_preset_file_is_defaults(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("")
    run, cfg, _ = ppo(preset=str(p))
    assert cfg == PPOConfig() and run == RunConfig(env_id=ENV)


# -- precedence ----------------------------------------------------------------------------
def test_precedence_defaults_preset_args_overrides(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("seed: 3\ntotal_steps: 300\nn_steps: 16\ngamma: 0.5\n")
    # preset over defaults
    run, cfg, _ = ppo(preset=str(p))
    assert (run.seed, run.total_steps, cfg.n_steps, cfg.gamma) == (3, 300, 16, 0.5)
    assert cfg.batch_size == PPOConfig().batch_size
    # explicit arguments over preset; None means "not given"
    run, cfg, _ = ppo(preset=str(p), seed=5, total_steps=500)
    assert (run.seed, run.total_steps, cfg.n_steps) == (5, 500, 16)
    run, _, _ = ppo(preset=str(p), seed=None, total_steps=None)
    assert (run.seed, run.total_steps) == (3, 300)
    run, _, _ = ppo(preset=str(p), seed=0)
    assert run.seed == 0
    # overrides over everything
    run, cfg, _ = ppo({"seed": 7, "total_steps": 700, "n_steps": 8, "discount": 0.25},
                      preset=str(p), seed=5, total_steps=500)
    assert (run.seed, run.total_steps, cfg.n_steps, cfg.gamma) == (7, 700, 8, 0.25)


def test_builtin_preset_then_override():
    run, cfg, _ = ppo({"n_steps": 4, "lr_schedule": "constant"}, preset=None, total_steps=1000)
    assert cfg.n_steps == 4 and cfg.lr_schedule == "constant"
    assert run.num_envs == 8  # still from the preset
    assert run.total_steps == 1000  # argument beats the preset's 100000


# -- parse_overrides -----------------------------------------------------------------------
def test_parse_overrides_yaml_values():
    out = parse_overrides(["hidden_sizes=[32,32]", "lr=1e-3", "gamma=0.9", "normalize_obs=true",
                           "activation=relu", "clip_range_vf=null", " n_steps = 8", "x=", "a=b=c",
                           "bad=[1,"])
    assert out["hidden_sizes"] == [32, 32]
    assert float(out["lr"]) == 1e-3
    assert out["gamma"] == 0.9
    assert out["normalize_obs"] is True
    assert out["activation"] == "relu"
    assert out["clip_range_vf"] is None
    assert out["n_steps"] == 8
    assert out["x"] == ""
    assert out["a"] == "b=c"
    assert out["bad"] == "[1,"  # not valid YAML: kept as the raw string


@pytest.mark.parametrize("item", ["novalue", "=5", " =5"])
def test_parse_overrides_malformed(item):
    with pytest.raises(ConfigError) as e:
        parse_overrides([item])
    assert repr(item) in str(e.value) and "key=value" in str(e.value)


def test_parsed_overrides_resolve():
    over = parse_overrides(["hidden_sizes=[32,32]", "lr=1e-3", "total_steps=1e5", "normalize_advantages=off"])
    run, cfg, _ = ppo(over)
    assert cfg.hidden_sizes == (32, 32) and cfg.learning_rate == 1e-3
    assert run.total_steps == 100_000 and cfg.normalize_advantages is False
    with pytest.raises(ConfigError, match="n_steps"):
        ppo(parse_overrides(["n_steps="]))


# -- documentation ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RunConfig, PPOConfig] + [a.Config for n, a in sorted(ALGORITHMS.items())
                                                           if a is not PPO],
                         ids=lambda c: c.__name__)
def test_every_field_has_help(cls):
    assert dataclasses.is_dataclass(cls)
    for f in dataclasses.fields(cls):
        h = f.metadata.get("help", "")
        assert isinstance(h, str) and h.strip(), f"{cls.__name__}.{f.name} has no help"
        assert "\n" not in h, f"{cls.__name__}.{f.name}: help must be one line"


def test_every_default_is_valid():
    # the defaults themselves must pass validation (build re-checks them)
    for cls in (RunConfig, PPOConfig):
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        assert config.build(cls, defaults) == cls()


def test_describe_lists_every_field():
    rows = config.describe(PPOConfig)
    assert [r[0] for r in rows] == [f.name for f in dataclasses.fields(PPOConfig)]
    assert dict((r[0], r[1]) for r in rows)["hidden_sizes"] == "list of int"


def test_every_shipped_preset_resolves_to_a_valid_config():
    checked = 0
    for algo, cls in ALGORITHMS.items():
        for name in config.preset_names(algo):
            resolve(algo, cls.Config, "CartPole-v1", preset=name)  # ConfigError on an unknown key or bad value
            checked += 1
    assert checked >= 20 and "deeprl_ContinuousCartPole-v0" in config.preset_names("pets")
