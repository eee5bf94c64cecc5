"""The error of the render backend (its own module, so that ``dot`` and the package's entry
points both raise it without importing each other)."""


class RenderError(Exception):
    """The diagram could not be drawn: graphviz (the package or ``dot``) missing, or failing."""
