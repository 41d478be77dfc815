"""secretscan: find leaked credentials in container images."""

__version__ = "0.1.0"
