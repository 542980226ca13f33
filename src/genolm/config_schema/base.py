"""Shared value types, the ``Section`` base model and :func:`validate` (see the package docstring)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from genolm.errors import GenolmError

PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Steps = Annotated[int, Field(ge=-1)]  # Lightning's -1: no limit
# which DNA strand predictions score (genolm.inference.strands.STRANDS)
Strand = Literal["forward", "reverse", "average"]
# genolm's fast kernels (genolm.models.fast.switch); YAML reads true/false as booleans
Fast = Annotated[Literal["auto", "true", "false"],
                 BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else v)]


class Section(BaseModel):
    """A config node: typed keys checked, any other key allowed."""

    model_config = ConfigDict(extra="allow", strict=False)


class Entry(Section):
    """Keys every entrypoint has; ``renamed``: its deprecated keys (:mod:`genolm.config_schema.renamed`)."""

    renamed: ClassVar[dict[str, str]] = {}
    seed: int = 42
    task_name: Annotated[str, Field(min_length=1)]
    fast: Fast = "auto"
    # let a Hugging Face model's own code run (passed to from_pretrained only when true)
    trust_remote_code: bool = False


def _plain(node: Any) -> Any:
    """The config as plain data without Hydra's ``_target_``-style keys (pydantic skips ``_`` names)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if not str(k).startswith("_")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    given = f"={error['input']!r}" if "input" in error and not isinstance(error["input"], dict) else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}{given}: {message}" if key else message


def validate(cfg: DictConfig, schema: type[Section]) -> None:
    """Check ``cfg`` against ``schema``; raise one :class:`GenolmError` naming every bad key.

    Raises:
        GenolmError: a required value (``???``) is missing, an interpolation cannot be resolved,
            or a value has the wrong type or range.

    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        keys = ", ".join(missing)
        raise GenolmError(f"config: required value missing: {keys} (set it on the command line, "
                          f"e.g. {missing[0]}=...)")
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise GenolmError(f"config: {str(err).splitlines()[0]}") from None
    try:
        schema.model_validate(_plain(plain))
    except ValidationError as err:
        problems = "; ".join(_describe(e) for e in err.errors(include_url=False))
        raise GenolmError(f"config: {problems}") from None
