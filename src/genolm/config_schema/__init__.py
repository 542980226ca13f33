"""Typed checks of every entrypoint's config, run before any work.

Hydra composes YAML and command-line values without types, so ``model.optimizer.lr=1e-3x`` or
``data.batch_size=0`` used to fail deep inside torch or Lightning with a traceback. Each
entrypoint names a pydantic model below; :func:`validate` resolves the config, reports a
missing required value (``???``) and checks every typed key, and raises one
:class:`~genolm.errors.GenolmError` that names each bad key and the value given.

The models list only the keys whose type or range genolm relies on; every other key passes
through untouched (``extra="allow"``), so experiments may add keys for their own objects.
"""

from genolm.config_schema.base import Section, validate
from genolm.config_schema.benchmark import BenchmarkConfig
from genolm.config_schema.embed import EmbedConfig
from genolm.config_schema.inference import EvalLMConfig, GenerateConfig, OptimizeConfig, ScoreConfig
from genolm.config_schema.interpret import InterpretConfig
from genolm.config_schema.training import EvalConfig, FinetuneConfig, PretrainConfig

__all__ = ["BenchmarkConfig", "EmbedConfig", "EvalConfig", "EvalLMConfig", "FinetuneConfig", "GenerateConfig",
           "InterpretConfig", "OptimizeConfig", "PretrainConfig", "ScoreConfig", "Section", "validate"]
