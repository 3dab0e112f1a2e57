"""The Pulumi program: `__main__.py` wires components from `config.load()`."""
