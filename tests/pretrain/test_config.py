"""The [train] section: embedded defaults, presets, overrides, errors that name the key."""
from __future__ import annotations

import pytest

from common import config as cfgmod
from common.config import ConfigError
from pretrain.config import TrainConfig, check_resume_config, deciding_config
from pretrain.train import parse_args, resolve_config


def test_embedded_default_is_two_phase_small_demo():
    cfg = cfgmod.load().train
    assert cfg.model.preset == "small"
    assert [p.name for p in cfg.phases] == ["base", "long"]
    assert (cfg.phases[0].seq_len, cfg.phases[0].yarn_factor) == (256, 1.0)
    assert (cfg.phases[1].seq_len, cfg.phases[1].yarn_factor, cfg.phases[1].yarn_original_context) == (1024, 4.0, 256)
    assert cfg.parallel.nproc == 0 and cfg.data.sources == [] and not cfg.data.allow_unfiltered
    assert cfg.processes() == (1 if (__import__('os').cpu_count() or 1) < 2 else 2)  # CPU: auto = 2


def test_tiny_preset_has_a_short_two_phase_schedule():
    cfg = cfgmod.load(preset="tiny", foreign="keep").train  # the preset also holds pipeline sections
    assert cfg.model.preset == "tiny" and len(cfg.phases) == 2 and cfg.total_steps <= 64


@pytest.mark.parametrize("override, names", [
    ("train.phases=[{name='a', steps=0}]", "train.phases[0].steps"),
    ("train.phases=[{name='a'}, {name='a'}]", "train.phases[1].name"),
    ("train.phases=[{name='a', warmup_steps=500}]", "train.phases[0].warmup_steps"),
    ("train.optim.beta2=1.5", "train.optim.beta2"),
    ("train.dtype='fp8'", "train.dtype"),
    ("train.aux_loss_scope='global'", "train.aux_loss_scope"),
    ("train.model.preset='huge'", "train.model.preset"),
    ("train.model.overrides={vocab_size=10}", "train.model.overrides.vocab_size"),
    ("train.model.overrides={n_layer=2}", "train.model.overrides.n_layer"),
    ("train.checkpoint.export_hf='sometimes'", "train.checkpoint.export_hf"),
    ("train.parallel={tp=2, nproc=3}", "train.parallel.nproc"),
    ("train.optim.lr=1.0", "'lr'"),
])
def test_bad_values_name_the_key(override, names):
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        cfgmod.load(overrides=[override])


def test_world_size_must_fit_the_parallel_sizes():
    cfg = TrainConfig()
    cfg.parallel.tp = 2
    with pytest.raises(ConfigError, match="train.parallel.tp"):
        cfg.check_world(3)
    cfg.parallel.tp, cfg.parallel.ep = 1, 2
    with pytest.raises(ConfigError, match="train.parallel.ep"):
        cfg.check_world(1)
    cfg.parallel.ep = 1
    cfg.phases[0].global_batch = 3
    with pytest.raises(ConfigError, match=r"train.phases\[0\]"):
        cfg.check_world(2)


def test_cli_overrides_may_omit_the_section_and_come_anywhere():
    args = parse_args(["log.every=3", "--preset", "tiny", "--run-dir", "x", "train.seed=5", "--allow-unfiltered"])
    cfg, run_dir = resolve_config(args)
    assert cfg.log.every == 3 and cfg.seed == 5 and cfg.data.allow_unfiltered and str(run_dir) == "x"
    cfg, run_dir = resolve_config(parse_args([]))
    assert str(run_dir) == "runs/demo"


def test_resume_compares_only_keys_that_change_the_computation(tmp_path):
    base = cfgmod.to_dict(TrainConfig())
    logged = {**base, "log": {**base["log"], "every": 99}, "checkpoint": {**base["checkpoint"], "every": 1}}
    assert deciding_config(base) == deciding_config(logged)
    (tmp_path / "config.json").write_text(__import__("json").dumps({"train": base}))
    check_resume_config(tmp_path, logged)
    with pytest.raises(ConfigError, match=r"train.optim.weight_decay"):
        check_resume_config(tmp_path, {**base, "optim": {**base["optim"], "weight_decay": 0.0}})
