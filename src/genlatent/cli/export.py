"""``genlatent export RUN_DIR --out DIR``: a run's model as a portable pretrained folder."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_export", "run_export"]


def add_export(commands: Any) -> None:
    """Add the ``export`` sub-command to ``commands`` (an argparse sub-parsers object)."""
    export = commands.add_parser(
        "export",
        help="write a run's model as config.json + model.safetensors",
        description="Write the model of a run's best (or last) checkpoint as a pretrained "
        "folder (config.json and model.safetensors, no pickle) that "
        "genlatent.from_pretrained loads without the run, and huggingface_hub can upload.",
    )
    export.add_argument("run_dir", help="a run directory")
    export.add_argument("--out", required=True, help="the folder to write")
    export.add_argument("--checkpoint", default="best", choices=["best", "last"])


def run_export(args: argparse.Namespace) -> int:
    """Load the run (`load_run`) and call its model's ``save_pretrained``; returns 0.

    Raises:
        TypeError: if the model cannot save itself (it does not inherit
            `genlatent.PretrainedMixin`) or has an argument config.json cannot hold.
    """
    from genlatent.train.runs import load_run

    def note(message: str) -> None:
        print(f"genlatent export: note: {message}", file=sys.stderr)

    loaded = load_run(args.run_dir, checkpoint=args.checkpoint, device="cpu", log=note)
    save = getattr(loaded.model, "save_pretrained", None)
    if not callable(save):
        name = type(loaded.model).__qualname__
        raise TypeError(
            f"{name} does not record its constructor arguments, so it cannot be exported: "
            f"make it inherit genlatent.PretrainedMixin (class {name}(nn.Module, "
            "genlatent.PretrainedMixin)) and train it again, or load the run with "
            "genlatent.load_run"
        )
    folder = save(args.out)
    print(f"wrote {folder} (config.json, model.safetensors) from {loaded.checkpoint.name}, "
          f"epoch {loaded.epoch}")  # fmt: skip
    return 0
