"""The error of the render backend (its own module, so that ``dot`` and the package's entry
points both raise it without importing each other)."""


class RenderError(Exception):
    """The diagram could not be drawn: graphviz (the package or ``dot``) missing, or failing."""


class TooLarge(RenderError):
    """The drawing exceeds a limit of graphviz's (a PNG side past 32,767 px): drawn smaller it
    would be shrunk, so it is folded, or refused."""


class RenderWarning(UserWarning):
    """The drawing was changed to fit (blocks folded to keep a PNG within graphviz's limit)."""
