"""Power monitors behind one small protocol: start, stop, a trace, energy per marked window."""
from mcuqual.power.monitor import PowerMonitor, PowerTrace, energy_windows

__all__ = ["PowerMonitor", "PowerTrace", "energy_windows"]
