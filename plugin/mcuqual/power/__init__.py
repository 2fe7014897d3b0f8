"""Power monitors behind one small protocol: start, stop, a trace, energy per marked window."""
from .monitor import PowerMonitor, PowerTrace, energy_windows

__all__ = ["PowerMonitor", "PowerTrace", "energy_windows"]
