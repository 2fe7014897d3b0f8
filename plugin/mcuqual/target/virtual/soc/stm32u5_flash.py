"""The STM32U5 flash interface's non-secure program/erase semantics (RM0456 section 7,
"Embedded flash memory (FLASH)": "Flash memory program and erase operations" and the
FLASH_NSKEYR, NSSR, NSCR registers), for the part as shipped, TrustZone disabled.

Unlock with the two NSKEYR keys (a wrong sequence locks NSCR until reset). Erase a page
with PER, PNB (7 bits, page of the bank) and BKER (the physical bank), or a bank with
MER1/MER2, then STRT. Program with PG set: a quad-word is four 32-bit stores to one
16-byte aligned quad-word, NSSR.WDW set while it waits for the rest. Programming
only clears bits of an erased quad-word (an all-zero quad-word may overwrite anything);
anything else sets the error flags the part sets: PGAERR (misaligned or scattered words),
SIZERR (a byte or half-word store), PROGERR (not erased), PGSERR (a start with errors
pending, or no operation selected). A store to flash without PG is a bus fault.

The virtual board asks before each store lands (`store`) and, once the store's block has
run, restores each 8-byte unit it touched to what `expected` says. A quad-word is only
known once its fourth word is stored, after its first half has been asked about, so
`expected` hands out one small buffer per 8-byte unit of the quad-word being programmed
and fills both when the quad-word completes (restores still pending copy the data from
them), and the completed quad-word is also written at once (for a unit whose restore
already ran, its word stores having ended a block).
"""
from __future__ import annotations

import ctypes
from typing import Callable

from mcuqual.target.virtual.arm.coresight import Peripheral

KEY1, KEY2 = 0x45670123, 0xCDEF89AB
ACR, NSKEYR, NSSR, NSCR, OPTR = 0x00, 0x08, 0x20, 0x28, 0x40
# RM0456 FLASH_OPTR as shipped: RDP level 0 (0xAA), DUALBANK, SWAP_BANK = 0, the SRAM ECC
# and reset options at their erased value 1, TZEN = 0 (TrustZone disabled)
OPTR_FACTORY = 0x1FEF_F8AA
OPTR_SWAP_BANK = 1 << 20
NSSR_EOP, NSSR_OPERR, NSSR_PROGERR, NSSR_WRPERR, NSSR_PGAERR, NSSR_SIZERR, NSSR_PGSERR = (
    1 << 0, 1 << 1, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7)
NSSR_OPTWERR, NSSR_BSY, NSSR_WDW = 1 << 13, 1 << 16, 1 << 17
NSSR_ERRORS = (NSSR_OPERR | NSSR_PROGERR | NSSR_WRPERR | NSSR_PGAERR | NSSR_SIZERR
               | NSSR_PGSERR | NSSR_OPTWERR)                                  # 0x20FA
NSCR_PG, NSCR_PER, NSCR_MER1, NSCR_BKER, NSCR_MER2, NSCR_STRT = (
    1 << 0, 1 << 1, 1 << 2, 1 << 11, 1 << 15, 1 << 16)
NSCR_EOPIE, NSCR_OPTLOCK, NSCR_LOCK = 1 << 24, 1 << 30, 1 << 31
PNB_SHIFT, PNB_MASK = 3, 0x7F
QUAD_WORD = 16
ERASED_QUAD_WORD = b"\xff" * QUAD_WORD


class FlashController(Peripheral):
    """FLASH of the STM32U5: FLASH_ACR's wait states and the non-secure controller."""

    name = "FLASH"
    RESET_VALUES = {NSCR: NSCR_LOCK | NSCR_OPTLOCK,   # both locked at reset
                    OPTR: OPTR_FACTORY}

    def __init__(self, base: int, flash_start: int, flash_size: int, page_size: int,
                 banks: int, memory: ctypes.Array,
                 on_change: "Callable[[int, int], None] | None" = None) -> None:
        super().__init__(base, 0x400)
        self.flash_start, self.flash_size = flash_start, flash_size
        self.page_size, self.banks = page_size, banks
        self.memory = memory
        self.on_change = on_change
        self._key_stage = 0
        self._locked_until_reset = False
        self._quad: int | None = None         # offset of the quad-word being written
        self._words: list[int] = []
        self._before = b""                    # its content before the first word landed
        self._units: dict[int, ctypes.Array] = {}   # its 8-byte units handed to the board

    @property
    def wait_states(self) -> int:
        """FLASH_ACR.LATENCY: the wait states the firmware programmed."""
        return self.regs.get(ACR, 0) & 0xF

    # ---- registers ---------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        value = super().read(offset, size)
        if offset == NSSR and self._quad is not None:
            value |= NSSR_WDW                 # a quad-word waits for its remaining words
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == NSKEYR:
            self._unlock_step(value)
        elif offset == NSSR:                  # write 1 to clear EOP and the error flags
            self.regs[NSSR] = self.regs.get(NSSR, 0) & ~(value & (NSSR_ERRORS | NSSR_EOP))
        elif offset == NSCR:
            self._write_cr(value)
        elif offset == OPTR:
            return                            # option bytes change only through OPTSTRT
        else:
            super().write(offset, size, value)

    def _unlock_step(self, value: int) -> None:
        if self._locked_until_reset:
            return
        if self._key_stage == 0 and value == KEY1:
            self._key_stage = 1
        elif self._key_stage == 1 and value == KEY2:
            self.regs[NSCR] &= ~NSCR_LOCK
            self._key_stage = 0
        else:                                 # a wrong sequence locks NSCR until reset
            self._locked_until_reset = True
            self.regs[NSCR] |= NSCR_LOCK

    def _write_cr(self, value: int) -> None:
        if self.regs.get(NSCR, 0) & NSCR_LOCK:
            return                            # writes ignored while locked
        keep = self.regs.get(NSCR, 0) & NSCR_OPTLOCK
        self.regs[NSCR] = (value & ~NSCR_STRT) | keep
        if value & NSCR_LOCK:
            return
        if value & NSCR_STRT:
            self._start(value)

    def _bank_bytes(self) -> int:
        return self.flash_size // self.banks

    def _bank_offset(self, bank: int) -> int:
        """Where physical bank `bank` answers: SWAP_BANK trades the two banks' addresses."""
        if self.regs.get(OPTR, 0) & OPTR_SWAP_BANK:
            bank ^= 1
        return bank * self._bank_bytes()

    def _start(self, cr: int) -> None:
        status = self.regs.get(NSSR, 0)
        if status & NSSR_ERRORS or cr & NSCR_PG:
            self.regs[NSSR] = status | NSSR_PGSERR    # errors pending, or PG with an erase
            return
        if cr & (NSCR_MER1 | NSCR_MER2):
            for bank, flag in ((0, NSCR_MER1), (1, NSCR_MER2)):
                if cr & flag and bank < self.banks:
                    self._fill(self._bank_offset(bank), self._bank_bytes())
        elif cr & NSCR_PER:
            bank = 1 if cr & NSCR_BKER else 0
            page = (cr >> PNB_SHIFT) & PNB_MASK
            offset = self._bank_offset(bank) + page * self.page_size
            if bank >= self.banks or page * self.page_size >= self._bank_bytes():
                self.regs[NSSR] = status | NSSR_PGSERR
                return
            self._fill(offset, self.page_size)
        else:
            self.regs[NSSR] = status | NSSR_PGSERR    # STRT with no operation selected
            return
        if cr & NSCR_EOPIE:
            self.regs[NSSR] = self.regs.get(NSSR, 0) | NSSR_EOP

    def _fill(self, offset: int, size: int) -> None:
        ctypes.memset(ctypes.addressof(self.memory) + offset, 0xFF, size)
        if self.on_change:
            self.on_change(offset, size)

    # ---- programming through the bus -------------------------------------------
    def _flag(self, bit: int) -> None:
        self.regs[NSSR] = self.regs.get(NSSR, 0) | bit

    def _abandon(self, bit: int) -> None:
        """A programming error: flag it and drop the quad-word under way (nothing lands)."""
        self._flag(bit)
        self._quad, self._words = None, []

    @property
    def accepts_stores(self) -> bool:
        """Unlocked: CPU stores into flash reach the controller (which programs them with
        PG set, or flags and faults them); locked, every store faults."""
        return not self.regs.get(NSCR, 0) & NSCR_LOCK

    def store(self, address: int, size: int, value: int) -> bool:
        """A CPU store into flash, called before it lands; True when it was taken (programmed
        or refused with an error flag, as the part does), False for a bus fault."""
        if self._quad is None:
            self._units = {}                  # the last quad-word's content has landed
        cr = self.regs.get(NSCR, 0)
        if cr & NSCR_LOCK or not cr & NSCR_PG:
            self._flag(NSSR_PGSERR)
            return False
        if size != 4:
            self._abandon(NSSR_SIZERR)
            return True
        offset = address - self.flash_start
        if self._quad is None:
            if offset % QUAD_WORD:
                self._abandon(NSSR_PGAERR)
                return True
            base = ctypes.addressof(self.memory)
            self._quad, self._words = offset, []
            self._before = ctypes.string_at(base + offset, QUAD_WORD)
        if offset != self._quad + 4 * len(self._words):
            self._abandon(NSSR_PGAERR)        # a word outside the quad-word under way
            return True
        self._words.append(value & 0xFFFFFFFF)
        if len(self._words) == 4:
            self._program()
        return True

    def _program(self) -> None:
        data = b"".join(word.to_bytes(4, "little") for word in self._words)
        quad, before = self._quad, self._before
        self._quad, self._words = None, []
        if before != ERASED_QUAD_WORD and data != bytes(QUAD_WORD):
            self._flag(NSSR_PROGERR)
            return
        for start in range(quad, quad + QUAD_WORD, 8):
            unit = self._units.setdefault(start, ctypes.create_string_buffer(8))
            ctypes.memmove(unit, data[start - quad:start - quad + 8], 8)
        # a unit whose restore already ran (its store ended a block) gets the data here
        ctypes.memmove(ctypes.addressof(self.memory) + quad, data, QUAD_WORD)
        if self.on_change:
            self.on_change(quad, QUAD_WORD)
        if self.regs.get(NSCR, 0) & NSCR_EOPIE:
            self._flag(NSSR_EOP)

    def expected(self, offset: int, before: bytes) -> bytes | ctypes.Array:
        """What the 8 bytes at `offset` hold once the store just made has landed: for the
        quad-word being programmed, a buffer that holds `before` now and the programmed
        data once the fourth word is in; elsewhere (refused stores) `before`."""
        if self._quad is not None and self._quad <= offset < self._quad + QUAD_WORD:
            unit = self._units.get(offset)
            if unit is None:
                unit = ctypes.create_string_buffer(bytes(before[:8]), 8)
                self._units[offset] = unit
            return unit
        if offset in self._units:             # the quad-word just completed
            return self._units[offset]
        return before

    def reset(self) -> None:
        super().reset()
        self._key_stage, self._locked_until_reset = 0, False
        self._quad, self._words, self._before, self._units = None, [], b"", {}
