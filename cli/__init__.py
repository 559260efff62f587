"""enumwatch: finds clients that enumerate ID numbers or celebrity names through a lookup API."""

__version__ = "0.1.0"
