"""Read an offline W&B run file (``run-<id>.wandb``): run record, config and summary.

wandb >= 0.19 keeps offline runs only in this file (no ``wandb-summary.json``); its layout is a
LevelDB-style log of protobuf ``Record`` messages: a 7-byte file header, then 32 KiB blocks of
records, each with a 7-byte header (crc32 4, length 2, type 1: full/first/middle/last).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7
FULL, LAST = 1, 4


def records(path: Path) -> Iterator[Any]:
    """Every protobuf ``Record`` of the file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block tail too short for a header: padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pending += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def read_run(path: Path) -> dict[str, Any]:
    """``{"id", "group", "job_type", "tags", "name", "config", "summary"}`` of an offline run."""
    out: dict[str, Any] = {"config": {}, "summary": {}}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(id=run.run_id, group=run.run_group, job_type=run.job_type, tags=list(run.tags),
                       name=run.display_name)
        elif kind in ("config", "summary"):
            for item in getattr(record, kind).update:
                out[kind][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out
