"""
The commands of `maskinporten-guard`, one module each, gathered on one group.

To add a command, write it in its own module here and add it below.
"""

from __future__ import annotations

from .app import cli
from .demo import demo_command
from .inspection import inspect_command
from .mint import mint_command
from .reporting import report_command
from .serve import serve_issuer_command

cli.add_command(demo_command)
cli.add_command(inspect_command)
cli.add_command(mint_command)
cli.add_command(report_command)
cli.add_command(serve_issuer_command)

__all__ = ["cli"]
