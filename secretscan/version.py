"""The tool's version, in a module of its own: submodules read it without importing the package
root, which re-exports the API (and so the whole scanner)."""

__version__ = "0.1.0"
