"""The `enumwatch` command line: the top layer, one module per user role.

`main` assembles the parser from `engineers`, `analysts` and `oncall`; each command turns flags into
settings and calls one flow or library function below it, so the work is testable without the CLI.
"""

__version__ = "0.1.0"
