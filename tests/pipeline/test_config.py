import pytest

from common import config as cfgmod


def test_embedded_defaults_need_no_file():
    cfg = cfgmod.load()
    assert cfg.ingest.text_field == "text"
    assert cfg.dedupe.shingle_size == 5
    assert cfg.run.workers >= 1


def test_unknown_key_names_file_key_and_suggestion(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[dedupe]\nband = 20\n")
    with pytest.raises(cfgmod.ConfigError) as e:
        cfgmod.load(config_file=f)
    msg = str(e.value)
    assert str(f) in msg and "'band'" in msg and "did you mean 'bands'" in msg


def test_unknown_section_is_an_error(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[ingets]\ntext_field = 'body'\n")
    with pytest.raises(cfgmod.ConfigError, match=r"unknown section \[ingets\].*did you mean 'ingest'"):
        cfgmod.load(config_file=f)


def test_wrong_type_names_the_field(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text("[ingest]\nmax_text_bytes = 'big'\n")
    with pytest.raises(cfgmod.ConfigError, match=r"\[ingest\]\.max_text_bytes: expected an integer"):
        cfgmod.load(config_file=f)


def test_invalid_value_is_refused():
    with pytest.raises(cfgmod.ConfigError, match="unicode_normalization"):
        cfgmod.load(overrides=["ingest.unicode_normalization=NFX"])


def test_layers_apply_in_order(tmp_path):
    f = tmp_path / "run.json"
    f.write_text('{"dedupe": {"bands": 9, "rows": 3}}')
    cfg = cfgmod.load(config_file=f, preset="tiny", overrides=["dedupe.rows=4"])
    assert (cfg.dedupe.bands, cfg.dedupe.rows) == (9, 4)
    assert cfg.demo.docs == 300            # from the tiny preset


def test_unknown_preset_lists_known_ones():
    with pytest.raises(cfgmod.ConfigError, match="known: .*tiny"):
        cfgmod.load(preset="tinny")


def test_cli_exits_2_on_bad_key(tmp_path):
    from tests.conftest import run_cli
    p = run_cli("-m", "pipeline", "run", "--run-dir", tmp_path / "r", "--set", "dedupe.bnds=3", check=False)
    assert p.returncode == 2
    assert "unknown key 'bnds'" in p.stderr and "bands" in p.stderr
