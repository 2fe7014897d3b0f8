"""The `pyocd.probe` entry point: a plugin class that imports nothing heavy until pyOCD loads it.

pyOCD imports every probe entry point while `import pyocd` itself runs, so this
module may import only pyOCD's plugin base; the virtual probe (unicorn, the board
models) is imported in `load()`, as pyOCD's own plugins do.
"""
from __future__ import annotations

from pyocd.core.options import OptionInfo
from pyocd.core.plugin import Plugin


class VirtualProbePlugin(Plugin):
    """Registers the virtual boards' probes and the project's pyOCD targets."""

    def load(self) -> type:
        from mcuqual.target.pyocd.probe_plugin import VirtualProbe
        try:
            from mcuqual.target.pyocd.targets import register_targets
        except ImportError:       # pyOCD is still importing itself: the targets register on
            pass                  # first use (BoardConnection.open)
        else:
            register_targets()
        return VirtualProbe

    @property
    def name(self) -> str:
        return "mcuqual-virtual"

    @property
    def description(self) -> str:
        return "mcuqual virtual board (emulated MCU running the real firmware ELF)"

    @property
    def options(self) -> list[OptionInfo]:
        return [OptionInfo("virtual.cycle_model", bool, False,
                           "Account cycles on the virtual board from the start (DWT CYCCNT counts, "
                           "emulation is about 30x slower). Off, CYCCNT stands still; the suite "
                           "switches it on for its timed inferences.")]
