"""Salted one-way ids, so no speaker id or source path reaches an output."""

from __future__ import annotations

import hashlib
import os

from spira.data.settings import SaltSettings
from spira.errors import UserError


def salted_id(value: str, salt: str, length: int = 16) -> str:
    return hashlib.sha256(f"{salt}\x00{value}".encode("utf-8")).hexdigest()[:length]


class MissingSaltError(UserError, ValueError):
    """Real data without a secret salt: its hashed ids could be matched by anyone with the config."""


def resolve_salt(settings: SaltSettings) -> tuple[str, str]:
    """The salt for hashing ids and where it came from (never the salt itself).

    The environment variable named by `data.speaker_id_salt_env` wins over the
    config value: a real cohort's salt stays out of params.yaml and git, so ids
    like "P001" cannot be re-hashed and matched by anyone reading the outputs.
    Without it, only a dataset marked `data.public_dataset: true` (the demo
    cohort, public corpora) runs on the config's salt; anything else raises
    MissingSaltError saying how to set one.
    """
    variable = settings.environment_variable
    if variable and os.environ.get(variable):
        return os.environ[variable], f"environment variable {variable}"
    if not settings.public_dataset:
        raise MissingSaltError(
            f"data={settings.dataset} hashes patient ids with a salt, and none is set: the config's salt "
            f"(data.speaker_id_salt) is public, so anyone could re-hash ids and match them. Set a secret one "
            f"in the environment and keep it (the same salt gives the same ids run after run):\n"
            f"    export {variable or 'SPIRA_SALT'}=$(python -c 'import secrets; print(secrets.token_hex(16))')\n"
            f"For a public dataset whose ids are not secret, opt out with -S data.public_dataset=true."
        )
    return settings.config_salt, "data.speaker_id_salt (public dataset)"
