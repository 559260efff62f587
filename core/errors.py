"""The base of every error a user can fix: the CLI prints its message as one line and exits 1."""


class UserError(Exception):
    """A problem with input, configuration or state that the person running enumwatch can fix."""
