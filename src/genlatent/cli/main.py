"""Argument parsing and the four sub-commands of ``genlatent``."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genlatent._options import Option
from genlatent.cli.export import add_export, run_export
from genlatent.train.config import (
    PRESETS,
    RESUMABLE,
    TrainConfig,
    describe_inapplicable,
    inapplicable_options,
    is_model_spec,
    train_options,
)

__all__ = ["build_parser", "main"]

EPILOG = """examples:
  genlatent train vae --dataset digits --out runs/digits-vae
  genlatent train vae --dataset mnist --data-dir ~/data/mnist --out runs/mnist-vae
  genlatent train vqvae --dataset cifar10 --data-dir ~/data --ema --out runs/cifar-vqvae
  genlatent train vqvae --dataset folder --data-dir ~/photos --image-size 64 --workers 4
  genlatent train vae --dataset digits --log tensorboard --out runs/digits-vae
  genlatent train --model examples/conditional_vae.py:build --dataset digits
  genlatent train prior runs/mnist-vqvae --conditional --epochs 20
  genlatent train --resume runs/mnist-vae
  genlatent eval runs/mnist-vae --iwae-k 1000
  genlatent sample runs/mnist-vae -n 64 --out samples.png
  genlatent plot runs/mnist-vae
"""


def _option_help(option: Option, applies: str | None) -> str:
    text = option.help.rstrip(".")
    if option.default not in (None, inspect.Parameter.empty, False):
        shown = (
            ",".join(map(str, option.default))
            if isinstance(option.default, tuple)
            else option.default
        )
        text += f" (default {shown})"
    if applies is not None:
        text += f" [{applies}]"
    return text


def _reader(option: Option) -> Callable[[str], Any]:
    if option.kind in (int, float, str):
        return option.kind  # argparse's own message: "invalid int value: 'two'"
    unchecked = dataclasses.replace(option, choices=None)  # argparse names the choices itself

    def read(text: str) -> Any:
        try:
            return unchecked.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    read.__name__ = option.kind.__name__
    return read


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One flag per option of `train_options`; flags left unset are not given."""
    for option, applies in train_options().values():
        help_text = _option_help(option, applies)
        if option.kind is bool:
            parser.add_argument(option.flag, action="store_true", default=None, help=help_text)
            continue
        metavar = "N,N,..." if option.kind is tuple else None
        parser.add_argument(
            option.flag, type=_reader(option), choices=option.choices, default=None,
            metavar=metavar, help=help_text,
        )  # fmt: skip


def _add_train(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a reference model or your own",
        description="Train the reference VAE, VQ-VAE or image tokenizer, or a model from your "
        "own code (--model FILE.py:FUNCTION). Unset options take the reference experiment's "
        "values (VAE: Adam 1e-3, batch 100, 30 epochs; VQ-VAE: Adam 2e-4, batch 128, 50 "
        "epochs; tokenizer: Adam 2e-4, batch 128, 20 epochs; your own model: Adam 1e-3, "
        "batch 128, 10 epochs).",
    )
    train.add_argument(
        "preset",
        nargs="?",
        choices=(*PRESETS, "prior"),
        help="the reference model to train, or 'prior': a prior over the codes of RUN_DIR",
    )
    train.add_argument(
        "source", nargs="?", metavar="RUN_DIR", help="with 'prior': the trained VQ-VAE's run"
    )
    _add_prior_training(train)
    train.add_argument(
        "--model",
        metavar="SPEC",
        help="train the model built by your function: path/to/file.py:build or "
        "package.module:build; it is called with the keyword arguments it declares among "
        "image_shape (C, H, W) and num_classes, and with the --model-arg values; the "
        "library's other presets are specs too: genlatent.models.presets:conv_vae (8-bit "
        "images, discretized logistic) and genlatent.models.presets:conditional_vae",
    )
    train.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --model: a keyword argument of your function, typed by its annotation "
        "(repeatable; recorded in the run)",
    )
    _add_config_options(train)
    train.add_argument("--out", help="run directory (default runs/<model>-<dataset>)")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help=f"continue the run in RUN_DIR; {_resumable_flags()} may change, other options "
        "must match the run's",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run that already has checkpoints in --out (a run that never "
        "wrote a checkpoint is replaced without it)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_prior_training(train: argparse.ArgumentParser) -> None:
    """The options of ``train prior``: the architecture, the conditioning, label dropout."""
    train.add_argument(
        "--prior",
        choices=("transformer", "pixelcnn", "maskgit"),
        default=None,
        help="with 'prior': the architecture (default transformer; maskgit: a masked "
        "parallel prior, sampled in --steps steps)",
    )
    train.add_argument(
        "--conditional", action="store_true", help="with 'prior': condition on the class labels"
    )
    train.add_argument(
        "--label-dropout", type=float, default=None, metavar="P",
        help="with 'prior --conditional': replace each training label by a null class with "
        "probability P, so that sample --guidance-scale can steer it (default 0: no null class)",
    )  # fmt: skip


def _resumable_flags() -> str:
    """The options ``--resume`` may change (`RESUMABLE`), as flags: "--a, --b and --c"."""
    flags = [f"--{name.replace('_', '-')}" for name in RESUMABLE]
    return ", ".join(flags[:-1]) + f" and {flags[-1]}"


def _add_inspection(commands: Any) -> None:
    _add_eval(commands)
    _add_sample(commands)
    plot = commands.add_parser("plot", help="loss curves, latent map, interpolation, code usage")
    plot.add_argument("run_dir", help="a run directory")
    plot.add_argument("--data-dir", help="override the dataset folder stored in the run")


def _add_eval(commands: Any) -> None:
    evaluate = commands.add_parser("eval", help="evaluate a run on its test set")
    evaluate.add_argument("run_dir", help="a run directory")
    evaluate.add_argument(
        "--iwae-k", type=int, default=0, help="also the importance-weighted bound with K samples"
    )
    evaluate.add_argument(
        "--checkpoint", default="best", choices=["best", "last"],
        help="the run's checkpoint every number is measured with: best (the lowest test "
        "loss, the default) or last",
    )  # fmt: skip
    evaluate.add_argument("--data-dir", help="override the dataset folder stored in the run")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument(
        "--samples",
        type=int,
        default=0,
        metavar="N",
        help="also the Frechet distance (and class consistency) of N samples and that of the "
        "reconstructions of N test images, measured with a classifier trained on the dataset "
        "(not Inception: not comparable with FID or rFID)",
    )
    evaluate.add_argument(
        "--guidance-scale", type=float, default=1.0, metavar="S",
        help="with --samples: draw the prior's samples with this classifier-free guidance "
        "(a conditional prior trained with --label-dropout; default 1, no guidance)",
    )  # fmt: skip
    _add_steps(evaluate, "with --samples: ")
    _add_prior_choice(evaluate)


def _add_sample(commands: Any) -> None:
    sample = commands.add_parser(
        "sample", help="decode samples of a run into an image grid or a folder of images"
    )
    sample.add_argument("run_dir", help="a run directory")
    sample.add_argument(
        "-n", "--num", type=int, default=None,
        help="how many images (default 64, or 8 of each class for a class-conditional "
        "model or prior: a row per class)",
    )  # fmt: skip
    sample.add_argument(
        "--out", required=True,
        help="a .png or .jpg file (one grid), or a folder (no extension): one PNG per image",
    )  # fmt: skip
    sample.add_argument("--seed", type=int, default=0, help="seeds the draws (default 0)")
    sample.add_argument(
        "--label", type=int, action="append", default=None, metavar="CLASS",
        help="a class to draw (repeatable; class-conditional models and priors; default "
        "every class in turn)",
    )  # fmt: skip
    sample.add_argument(
        "--temperature", type=float, default=1.0,
        help="divides the prior's logits: below 1 sharper, above 1 more varied (default 1)",
    )  # fmt: skip
    sample.add_argument(
        "--top-k", type=int, default=None, help="draw each code from the prior's K likeliest"
    )
    sample.add_argument(
        "--top-p", type=float, default=None,
        help="draw each code from the prior's smallest set of probability >= P (nucleus)",
    )  # fmt: skip
    sample.add_argument(
        "--guidance-scale", type=float, default=1.0, metavar="S",
        help="classifier-free guidance of a conditional prior trained with --label-dropout: "
        "0 unconditional, 1 the conditional model (default), above 1 more class-like",
    )  # fmt: skip
    _add_steps(sample, "")
    sample.add_argument("--checkpoint", default="best", choices=["best", "last"])
    _add_prior_choice(sample)


def _add_steps(parser: argparse.ArgumentParser, prefix: str) -> None:
    parser.add_argument(
        "--steps", type=int, default=None, metavar="S",
        help=f"{prefix}draw each grid in S parallel steps (a maskgit prior; default 8)",
    )  # fmt: skip


def _add_prior_choice(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--prior-dir", help="the prior to sample codes from (default: RUN_DIR/prior, if fitted)"
    )
    group.add_argument(
        "--no-prior", action="store_true", help="sample uniformly random codes, even with a prior"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``genlatent`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="genlatent",
        description="Train and inspect VAEs, VQ-VAEs and models from your own code.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks (also GENLATENT_DEBUG=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_inspection(commands)
    add_export(commands)
    return parser


def _version() -> str:
    from genlatent import __version__

    return f"genlatent {__version__}"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _note(command: str) -> Callable[[str], None]:
    """Print each distinct note once (a command may read the same run several times)."""
    said: set[str] = set()

    def note(message: str) -> None:
        if message not in said:
            said.add(message)
            print(f"genlatent {command}: note: {message}", file=sys.stderr)

    return note


def _exit_status(error: BaseException) -> int:
    """1 for a training failure (a diverged run, a broken step), 2 for usage and data errors."""
    from genlatent.train import CheckpointError, NonFiniteLossError

    if isinstance(error, NonFiniteLossError):
        return 1
    if isinstance(error, RuntimeError) and not isinstance(error, CheckpointError):
        return 1
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Every failure prints one line to stderr (no traceback unless ``--debug`` or
    ``GENLATENT_DEBUG=1``): exit status 2 for usage and data errors, 1 for training
    failures, 130 on an interrupt.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("GENLATENT_DEBUG", "") not in ("", "0")
    commands = {"train": _train, "eval": _eval, "sample": _sample, "plot": _plot}
    commands["export"] = run_export
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        if debug:
            raise
        run_dir = getattr(args, "run_dir_in_use", None)
        hint = f" (resume with genlatent train --resume {run_dir})" if run_dir else ""
        print(f"genlatent {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, RuntimeError, ArithmeticError) as error:
        if debug:
            raise
        message = " ".join(str(error).split())  # one line, whatever the error held
        print(f"genlatent {args.command}: error: {message}", file=sys.stderr)
        return _exit_status(error)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The config values given on the command line (flags left unset are not given)."""
    names = train_options()
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    if args.preset and args.model:
        raise ValueError(f"give a preset ({args.preset}) or --model {args.model}, not both")
    model = args.preset or args.model
    if model is None:
        raise ValueError(
            "train needs a model: vae, vqvae, tokenizer or --model FILE.py:FUNCTION "
            "(or --resume RUN_DIR)"
        )
    given = _given(args)
    wrong = inapplicable_options(model, given, given.get("quantizer"))
    if wrong:
        raise ValueError(describe_inapplicable(model, wrong, given.get("quantizer"), _flag))
    if args.model_arg and not is_model_spec(model):
        raise ValueError("--model-arg applies to --model FILE.py:FUNCTION only")
    if is_model_spec(model):
        from genlatent.train.spec import load_function, parse_arguments

        arguments = parse_arguments(load_function(model), args.model_arg, model)
        return TrainConfig(model=model, architecture=arguments, **given)
    return TrainConfig(model=model, **given)


def _train_prior(args: argparse.Namespace) -> int:
    from genlatent.train.prior import fit_prior

    if args.source is None:
        raise ValueError("train prior needs the VQ-VAE's run directory: train prior RUN_DIR")
    given = _given(args)
    allowed = {"epochs", "batch_size", "lr", "seed", "device"}
    extra = sorted(set(given) - allowed)
    if extra:
        raise ValueError(
            "options that do not apply to train prior: " + ", ".join(map(_flag, extra))
        )
    resume = args.resume is not None
    out = args.resume or args.out
    args.run_dir_in_use = out
    if args.label_dropout is not None and not args.conditional:
        raise ValueError("--label-dropout applies to train prior --conditional only")
    options = {} if args.label_dropout is None else {"label_dropout": args.label_dropout}
    summary = fit_prior(
        args.source, prior=args.prior or "transformer", conditional=args.conditional, out=out,
        options=options, resume=resume,
        overwrite=args.overwrite, show_progress=False if args.no_progress else None,
        **{"epochs": 20, "batch_size": 128, "lr": 1e-3, **given},
    )  # fmt: skip
    print(f"prior run directory: {summary.run_dir}")
    print(f"  samples:         {summary.run_dir / 'samples.png'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from genlatent.train.runner import train

    if args.preset == "prior":
        return _train_prior(args)
    if args.source is not None:
        raise ValueError(f"unexpected argument {args.source!r}: only train prior takes RUN_DIR")
    prior_only = [
        flag
        for flag, value in (
            ("--prior", args.prior),
            ("--conditional", args.conditional),
            ("--label-dropout", args.label_dropout),
        )
        if value is not None and value is not False
    ]
    if prior_only:
        raise ValueError(f"{' and '.join(prior_only)} apply to train prior RUN_DIR only")
    progress = False if args.no_progress else None
    args.run_dir_in_use = args.resume  # named by the interrupt's hint
    if args.resume:
        given = _given(args)
        if args.preset or args.model:
            given["model"] = args.preset or args.model
        summary = train(
            None, args.resume, resume=True, given=given, show_progress=progress,
            log=print, flag=_flag,
        )  # fmt: skip
    else:
        config = _config_from_args(args)
        name = args.preset or Path(config.model.rpartition(":")[0]).stem.split(".")[-1]
        out = args.out or f"runs/{name}-{config.dataset}"
        args.run_dir_in_use = out
        summary = train(
            config, out, overwrite=args.overwrite, show_progress=progress, log=print, flag=_flag
        )
    run = summary.run_dir
    print(f"run directory: {run}")
    print(f"  metrics:         {run / 'metrics.jsonl'}")
    if (run / "steps.jsonl").exists():
        print(f"  steps:           {run / 'steps.jsonl'}")
    print(f"  checkpoints:     {run / 'checkpoints'}")
    for name in ("reconstructions.png", "samples.png"):
        if (run / name).exists():
            print(f"  {name.removesuffix('.png') + ':':<17}{run / name}")
    return 0


def _prior_of(args: argparse.Namespace, log: Callable[[str], None]) -> Any:
    """The prior chosen for a run (``--prior-dir``, else ``RUN_DIR/prior`` if fitted), or None."""
    from genlatent.train.prior import SPEC_FILE, load_prior

    if args.no_prior:
        return None
    if args.prior_dir is not None:
        return load_prior(args.prior_dir, log=log).model
    folder = Path(args.run_dir) / "prior"
    if not (folder / SPEC_FILE).is_file():
        return None
    return load_prior(folder, log=log).model


def _as_prior_run(args: argparse.Namespace) -> None:
    """``eval``/``sample`` of a prior's own run directory act on its VQ-VAE with it."""
    from genlatent.train.prior import prior_source

    source = prior_source(args.run_dir)
    if source is not None and args.prior_dir is None and not args.no_prior:
        args.prior_dir, args.run_dir = args.run_dir, str(source)


def _eval(args: argparse.Namespace) -> int:
    from genlatent.train.runs import evaluate_run

    log = _note("eval")
    _as_prior_run(args)
    results = evaluate_run(
        args.run_dir, iwae_k=args.iwae_k, checkpoint=args.checkpoint, data_dir=args.data_dir,
        log=log,
    )  # fmt: skip
    prior = _prior_of(args, log)
    if prior is not None:
        from genlatent.train.prior import evaluate_prior

        results |= evaluate_prior(
            args.run_dir, args.prior_dir, data_dir=args.data_dir, checkpoint=args.checkpoint,
            log=log,
        )  # fmt: skip
    if args.samples:
        from genlatent.train.quality import sample_quality

        results |= sample_quality(
            args.run_dir, args.samples, prior=prior, data_dir=args.data_dir,
            guidance_scale=args.guidance_scale, steps=args.steps, checkpoint=args.checkpoint,
            log=log,
        )  # fmt: skip
    elif args.steps is not None:
        raise ValueError("--steps applies to eval --samples only")
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print(_results_table(results, _run_loss_unit(args.run_dir, log)))
    return 0


def _run_loss_unit(run_dir: str, log: Callable[[str], None]) -> str | None:
    """The loss unit of the run's model (read from its class, see `loss_unit`)."""
    from genlatent._protocols import loss_unit
    from genlatent.train.runs import load_run

    return loss_unit(load_run(run_dir, device="cpu", log=log).model)


def _results_table(results: dict[str, Any], unit: str | None) -> str:
    """``eval``'s table: name, value (counts as integers) and unit, one line each."""
    from genlatent.train.units import COUNTS, unit_of

    width = max(map(len, results))
    lines = []
    for name, value in results.items():
        shown = str(value)
        if isinstance(value, float):
            whole = name in COUNTS and value.is_integer()
            shown = str(int(value)) if whole else f"{value:.4f}"
        lines.append(f"{name:<{width}}  {shown:>10}  {unit_of(name, unit)}".rstrip())
    return "\n".join(lines)


def _sample(args: argparse.Namespace) -> int:
    from genlatent.train.sampling import sample_run

    log = _note("sample")
    _as_prior_run(args)
    path = sample_run(
        args.run_dir, args.num, Path(args.out), seed=args.seed, checkpoint=args.checkpoint,
        prior=_prior_of(args, log), labels=args.label, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, guidance_scale=args.guidance_scale,
        steps=args.steps, log=log,
    )  # fmt: skip
    print(f"wrote {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from genlatent.plotting import plot_run

    for path in plot_run(args.run_dir, data_dir=args.data_dir, log=_note("plot")):
        print(f"wrote {path}")
    return 0
