"""The ``neural-ae`` command line (:func:`main`); one module per command family."""
from neural_ae_ros.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
