"""Vendor SoC parts of the virtual board (RCC, PWR, flash interface, GPIO, DBGMCU), one
module per SoC family; a board profile names its family with `virtual_soc`."""
from __future__ import annotations

import importlib

# SoC families by the name a board profile gives (`virtual_soc`): "module:Class", imported
# when a virtual board of that family is made.
SOCS = {
    "stm32l4": "mcuqual.target.virtual.soc.stm32l4:Stm32l4Soc",
    "stm32u5": "mcuqual.target.virtual.soc.stm32u5:Stm32u5Soc",
    "stm32h7": "mcuqual.target.virtual.soc.stm32h7:Stm32h7Soc",
}


def soc_class(name: str) -> type:
    """The SoC model class registered as `name` (KeyError when none is)."""
    module, _, attribute = SOCS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
