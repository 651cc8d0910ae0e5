"""The ``genlatent`` command: train, evaluate, sample and plot runs."""

from genlatent.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
