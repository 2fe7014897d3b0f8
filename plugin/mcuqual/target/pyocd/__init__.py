"""The suite's pyOCD parts: the `pyocd.probe` entry point, the virtual probe, pyOCD targets,
and the flash algorithm pyOCD runs.

`import pyocd` loads every probe entry point, ours included, while it runs. Importing
pyOCD here, before any module of this package, means that a cold import of any of them
finds pyOCD whole; without it, `import mcuqual.target.pyocd.probe_plugin` on a fresh
interpreter would have pyOCD re-enter the half-imported module through the entry point.
"""
import pyocd  # noqa: F401  (first: see above)
