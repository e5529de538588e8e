"""pipnb's version (``pipnb.__version__``), in a module of its own so that pipnb's modules can read it without
importing the package's public face."""

__version__ = "0.1.0"
