"""The STM32L4+ flash interface's program/erase semantics (RM0432, section 3.3).

Unlock with the two KEYR keys (a wrong key locks until reset), erase a page
with PER/PNB/BKER and STRT, program with PG set and a 64-bit aligned double
word written as two words. Programming only clears bits of an erased double
word; anything else sets the error flags real hardware sets. Ordinary stores
to flash, without PG, are bus faults on the virtual board as on the part.
"""
from __future__ import annotations

import ctypes
from typing import Callable

from mcuqual.target.virtual.arm.coresight import Peripheral

KEY1, KEY2 = 0x45670123, 0xCDEF89AB
ACR, KEYR, SR, CR, OPTR = 0x00, 0x08, 0x10, 0x14, 0x20
OPTR_FACTORY = 0xFFEF_F8AA      # RM0432 option bytes as shipped: DBANK = 1 (dual bank)
OPTR_DBANK = 1 << 22
ACR_ICEN, ACR_DCEN = 1 << 9, 1 << 10
# FLASH_ACR after reset: both ART caches on, 0 wait states (as RM0440 says of the same
# ART on the STM32G4; the firmware sets LATENCY, PRFTEN, ICEN and DCEN itself anyway)
ACR_RESET = ACR_ICEN | ACR_DCEN
SR_EOP, SR_PROGERR, SR_WRPERR, SR_PGAERR, SR_SIZERR, SR_PGSERR, SR_BSY = (
    1 << 0, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 16)
SR_ERRORS = 0xC3FA
CR_PG, CR_PER, CR_MER1, CR_BKER, CR_MER2, CR_STRT, CR_EOPIE, CR_LOCK = (
    1 << 0, 1 << 1, 1 << 2, 1 << 11, 1 << 15, 1 << 16, 1 << 24, 1 << 31)


class FlashController(Peripheral):
    name = "FLASH"
    RESET_VALUES = {ACR: ACR_RESET,
                    CR: CR_LOCK | (1 << 30),     # LOCK and OPTLOCK at reset
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
        self._pending: tuple[int, int, bool] | None = None   # first word of a double word
        self._programmed: tuple[int, bytes] | None = None
        # called after FLASH_ACR changes (the cycle model follows ICEN/DCEN)
        self.on_control: "Callable[[], None] | None" = None

    @property
    def wait_states(self) -> int:
        return self.regs.get(ACR, 0) & 0xF

    @property
    def cache_enables(self) -> tuple[bool, bool]:
        """(ICEN, DCEN): whether the ART's instruction and data caches are on."""
        acr = self.regs.get(ACR, 0)
        return bool(acr & ACR_ICEN), bool(acr & ACR_DCEN)

    # ---- registers ---------------------------------------------------------------
    def write(self, offset: int, size: int, value: int) -> None:
        if offset == KEYR:
            self._unlock_step(value)
        elif offset == SR:
            self.regs[SR] = self.regs.get(SR, 0) & ~(value & (SR_ERRORS | SR_EOP))
        elif offset == CR:
            self._write_cr(value)
        else:
            super().write(offset, size, value)
            if offset == ACR and self.on_control is not None:
                self.on_control()

    def _unlock_step(self, value: int) -> None:
        if self._locked_until_reset:
            return
        if self._key_stage == 0 and value == KEY1:
            self._key_stage = 1
        elif self._key_stage == 1 and value == KEY2:
            self.regs[CR] &= ~CR_LOCK
            self._key_stage = 0
        else:
            self._locked_until_reset = True       # RM0432: a wrong sequence locks until reset
            self.regs[CR] |= CR_LOCK

    def _write_cr(self, value: int) -> None:
        current = self.regs.get(CR, 0)
        if current & CR_LOCK:
            return                                # writes ignored while locked
        self.regs[CR] = value & ~CR_STRT
        if value & CR_LOCK:
            self.regs[CR] |= CR_LOCK
            return
        if value & CR_STRT:
            self._start(value)

    @property
    def dual_bank(self) -> bool:
        return self.banks > 1 and bool(self.regs.get(OPTR, 0) & OPTR_DBANK)

    def _bank_bytes(self) -> int:
        return self.flash_size // self.banks

    def _start(self, cr: int) -> None:
        if self.regs.get(SR, 0) & SR_ERRORS:
            self.regs[SR] |= SR_PGSERR            # errors pending: operation refused
            return
        if cr & (CR_MER1 | CR_MER2):
            for bank, flag in ((0, CR_MER1), (1, CR_MER2)):
                if cr & flag and bank < self.banks:
                    self._fill(bank * self._bank_bytes(), self._bank_bytes())
        elif cr & CR_PER:
            page = (cr >> 3) & 0xFF
            if self.dual_bank:
                bank = 1 if cr & CR_BKER else 0
                offset, size = bank * self._bank_bytes() + page * self.page_size, self.page_size
            else:                                 # one bank of pages twice the size
                bank, offset, size = 0, page * 2 * self.page_size, 2 * self.page_size
            if bank >= self.banks or offset + size > self.flash_size:
                self.regs[SR] |= SR_PGSERR
                return
            self._fill(offset, size)
        else:
            self.regs[SR] |= SR_PGSERR
            return
        if cr & CR_EOPIE:
            self.regs[SR] |= SR_EOP

    def _fill(self, offset: int, size: int) -> None:
        ctypes.memset(ctypes.addressof(self.memory) + offset, 0xFF, size)
        if self.on_change:
            self.on_change(offset, size)

    # ---- programming through the bus -------------------------------------------
    @property
    def accepts_stores(self) -> bool:
        """Unlocked: CPU stores into flash reach the controller (which programs them with
        PG set, or flags and faults them); locked, every store faults."""
        return not self.regs.get(CR, 0) & CR_LOCK

    def store(self, address: int, size: int, value: int) -> bool:
        """A CPU store into flash; True when it programmed (or was absorbed), False to fault."""
        cr = self.regs.get(CR, 0)
        if cr & CR_LOCK or not cr & CR_PG:
            self.regs[SR] = self.regs.get(SR, 0) | SR_PGSERR
            return False
        if size != 4:
            self.regs[SR] = self.regs.get(SR, 0) | SR_SIZERR
            return True
        offset = address - self.flash_start
        base = ctypes.addressof(self.memory)
        # called before the store lands, so each word is checked while it still holds
        # what the flash held
        erased = ctypes.string_at(base + offset, 4) == b"\xff" * 4
        if self._pending is None:
            if offset % 8:
                self.regs[SR] = self.regs.get(SR, 0) | SR_PGAERR
                return True
            self._pending = (offset, value, erased)
            return True
        first_offset, first_value, first_erased = self._pending
        self._pending = None
        if offset != first_offset + 4:
            self.regs[SR] = self.regs.get(SR, 0) | SR_PGAERR
            return True
        double_word = first_value | (value << 32)
        if not (first_erased and erased) and double_word != 0:
            self.regs[SR] = self.regs.get(SR, 0) | SR_PROGERR
            return True
        self._programmed = (first_offset, double_word.to_bytes(8, "little"))
        if cr & CR_EOPIE:
            self.regs[SR] = self.regs.get(SR, 0) | SR_EOP
        return True

    def expected(self, offset: int, before: bytes) -> bytes:
        """What the double word at `offset` holds after the store just made."""
        if self._programmed is not None and self._programmed[0] == offset:
            content, self._programmed = self._programmed[1], None
            return content
        return before

    def reset(self) -> None:
        super().reset()
        self._key_stage, self._locked_until_reset = 0, False
        self._pending = self._programmed = None
        if self.on_control is not None:
            self.on_control()
