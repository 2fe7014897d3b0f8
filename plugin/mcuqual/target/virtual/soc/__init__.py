"""Vendor SoC parts of the virtual board (RCC, PWR, flash interface, GPIO, DBGMCU), one
module per SoC family; a board profile names its family with `virtual_soc`."""

from mcuqual.target.virtual.soc.stm32l4 import Stm32l4Soc

# SoC families by the name a board profile gives (`virtual_soc`).
SOCS = {"stm32l4": Stm32l4Soc}
