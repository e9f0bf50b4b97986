"""Private by construction: loggers never receive data paths or salts, and real data needs a secret salt."""

from __future__ import annotations

import sys

import pytest

from spira.config import compose_config
from spira.data.prepare import prepare_dataset
from spira.pipeline.data import prepare_settings, salt_settings
from spira.data.privacy import MissingSaltError, resolve_salt
from spira.tracking import private_config
from conftest import REPO_ROOT, run
from test_experiments import wandb_run_contents

HOSPITAL_PATH = "/srv/hospital-sao-luiz/recordings"
SALT = "s3cr3t-salt-of-the-cohort"


def hospital_config(*overrides: str):
    return compose_config(
        ["data=manifest", f"data.root={HOSPITAL_PATH}", f"data.speaker_id_salt={SALT}", "logger=wandb", *overrides]
    )


def test_private_values_become_fingerprints_and_the_rest_stays():
    cfg = hospital_config("logger.wandb.save_dir=/home/clinician/wandb")
    config = private_config(cfg)
    assert config["data"]["root"].startswith("private:") and config["data"]["noise_root"] == config["data"]["root"]
    assert config["data"]["speaker_id_salt"].startswith("private:")
    assert config["logger"]["wandb"]["save_dir"].startswith("private:")  # an absolute path
    assert private_config(hospital_config("data.root=/srv/other"))["data"]["root"] != config["data"]["root"]
    assert config["model"] == {**compose_config().model}
    assert config["data"]["name"] == "manifest" and config["data"]["sample_rate"] == 16000


LOG_A_RUN = """
import sys
import wandb
from spira.config import compose_config
from spira.tracking import instantiate_loggers

# The overrides arrive on the command line, as with `python -m spira.experiment data.root=...`.
cfg = compose_config(sys.argv[1:])
[logger] = instantiate_loggers(cfg)
logger.experiment.log({"val/file_auroc": 0.5})
wandb.finish()
"""


def test_an_offline_wandb_run_holds_no_path_and_no_salt(tmp_path):
    overrides = ["data=manifest", f"data.root={HOSPITAL_PATH}", f"data.speaker_id_salt={SALT}", "logger=wandb"]
    run([sys.executable, "-c", LOG_A_RUN, *overrides], tmp_path, env={"SPIRA_PROJECT": str(REPO_ROOT)})
    [run_dir] = (tmp_path / "wandb").glob("offline-run-*")
    config = wandb_run_contents(run_dir)["config"]
    assert config["data"]["root"].startswith("private:") and config["data"]["speaker_id_salt"].startswith("private:")
    assert config["model"]["dropout"] == 0.7 and config["data"]["name"] == "manifest"
    files = [path for path in (tmp_path / "wandb").rglob("*") if path.is_file()]
    assert any(path.suffix == ".wandb" for path in files)
    for path in files:
        content = path.read_bytes()
        assert SALT.encode() not in content, path
        assert b"hospital-sao-luiz" not in content, path


def test_real_data_without_a_salt_from_the_environment_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIRA_SALT", raising=False)
    (tmp_path / "recordings").mkdir()
    data = compose_config(["data=manifest", f"data.root={tmp_path / 'recordings'}"]).data
    with pytest.raises(MissingSaltError, match=r"export SPIRA_SALT=.*\n.*-S data.public_dataset=true"):
        prepare_dataset(prepare_settings(data), tmp_path / "prepared", tmp_path / "quarantine")
    assert not (tmp_path / "prepared").exists()
    # The SPIRA layout is a real cohort: refused the same way; the synthetic demo cohort runs on the config's salt.
    with pytest.raises(MissingSaltError, match="data=spira"):
        resolve_salt(salt_settings(compose_config(["data=spira"]).data))
    demo = compose_config().data
    assert resolve_salt(salt_settings(demo))[0] == demo.speaker_id_salt
