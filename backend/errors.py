"""Errors the user can act on. The command line prints them as one line and exits with status 2."""


class StyleTexError(Exception):
    """Bad input or settings: the message names what is wrong (file and line where there is one)."""


class MeshError(StyleTexError):
    """A mesh file or mesh array that cannot be used."""
