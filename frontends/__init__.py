"""Front ends: existing models in, `.net` specs out (``netc import``)."""
