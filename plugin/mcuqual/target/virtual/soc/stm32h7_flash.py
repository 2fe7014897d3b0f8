"""The STM32H742/743/753/750 embedded flash interface (RM0433 Rev 8, chapter 4), as a
debugger's flash algorithm and the firmware drive it.

Two banks of 1 MB, eight 128 KB sectors each (RM0433 4.3.4), each bank with its own
key, control, status and clear registers (bank 2's at +0x100, RM0433 4.9). What is
modelled:

* Unlocking (RM0433 4.5.1): KEYRx takes 0x45670123 then 0xCDEF89AB; any other write
  locks the bank's control register until the next reset. CRx ignores writes while
  LOCK is set; writing LOCK = 1 locks it again.
* Programming (RM0433 4.3.9): with PG set, stores into the bank fill a 256-bit write
  buffer (one flash word, 32 bytes, aligned); the word is programmed when the buffer is
  full, or with whatever it holds when FW (force write) is set (the bytes not written
  stay erased). Writing a byte of the buffer twice is a strobe error (STRBERR,
  RM0433 4.7.4); a store into another flash word while the buffer holds a partial one
  is an inconsistency error (INCERR, RM0433 4.7.5), and the partial word is dropped.
  A store with PG clear is a programming sequence error (PGSERR, RM0433 4.7.3) and,
  as for the L4, the virtual board answers it with a precise bus fault.
* Only erased flash words can be programmed: the part keeps ECC per flash word
  (RM0433 4.3.12), and a word programmed twice no longer matches its ECC. The one
  exception the model accepts is overwriting a word with all zeros. Any other attempt
  leaves the word unchanged and sets OPERR (the virtual board's way of saying so; the
  silicon would report ECC errors when the word is read back, RM0433 4.7.7).
* Erasing (RM0433 4.3.10): SER with the sector number SNB, or BER for the whole bank,
  then START. Both or neither is a programming sequence error.
* The operations complete at once: BSY, QW and CRC_BUSY read 0 (nothing queued),
  WBNE reads 1 while the write buffer holds a partial flash word, EOP is set when a
  program or erase operation ends. FLASH_CCRx clears SRx flags by writing 1 (RM0433
  4.9.5); SRx itself is read-only.
* FLASH_ACR (RM0433 4.9.1): LATENCY (read wait states) and WRHIGHFREQ, reset value
  0x37 (7 wait states), also visible at offset 0x100 like every register the two banks
  share (OPTKEYR, OPTCR, OPTSR, OPTCCR, BOOT, CRCDATA).

How stores reach the model: the virtual board calls `store()` before a CPU store into
flash lands, and `expected()` for the 8-byte chunk around it; the raw store lands and is
then overwritten ("fixed up") with what `expected()` said, once the store's basic block
is over. A flash word completes on its last store, but its other chunks were already
given fix-ups holding the erased bytes. So the completed word is written into the flash
memory at once (enough when those fix-ups have already landed, the common case of a
programming loop) and again on the next access to the flash registers (a program
always polls QW or BSY before it reads what it programmed), which covers a word whose
stores all sit in one block.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Callable

from mcuqual.target.virtual.arm.coresight import Peripheral

KEY1, KEY2 = 0x4567_0123, 0xCDEF_89AB
FLASH_WORD = 32                     # bytes: 256 bits (RM0433 4.3.4)
SECTOR_BYTES = 128 * 1024           # RM0433 4.3.4, Table 15
BANK_STRIDE = 0x100                 # bank 2's registers (RM0433 4.9, register map)

# register offsets (bank 1; bank 2 adds BANK_STRIDE to KEYR, CR, SR, CCR)
ACR, KEYR, OPTKEYR, CR, SR, CCR, OPTCR, OPTSR_CUR, OPTSR_PRG = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20)
WPSN_CUR, WPSN_PRG = 0x38, 0x3C
SHARED = (ACR, OPTKEYR, OPTCR, OPTSR_CUR, OPTSR_PRG, 0x24, 0x40, 0x44, 0x5C)

CR_LOCK, CR_PG, CR_SER, CR_BER, CR_FW, CR_START = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 6, 1 << 7
CR_PSIZE_SHIFT, CR_SNB_SHIFT = 4, 8
SR_BSY, SR_WBNE, SR_QW, SR_CRC_BUSY = 1 << 0, 1 << 1, 1 << 2, 1 << 3
SR_EOP, SR_WRPERR, SR_PGSERR, SR_STRBERR, SR_INCERR, SR_OPERR = (
    1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 21, 1 << 22)
SR_FLAGS = 0x0FEF_0000              # EOP .. CRCEND: what CCRx clears (bit 20 reserved)

ACR_RESET = 0x0000_0037             # LATENCY = 7, WRHIGHFREQ = 3 (RM0433 4.9.1)
CR_RESET = 0x0000_0031              # LOCK, PSIZE = 0b11 (RM0433 4.9.4)
OPTCR_RESET = 0x0000_0001           # OPTLOCK (RM0433 4.9.8)
# option status: RDP level 0 (0xAA in bits 15:8, what pyOCD's is_locked() checks);
# the other user option bits are not modelled
OPTSR_RESET = 0x0000_AA00
WPSN_RESET = 0x0000_00FF            # no sector write-protected (nWRPSn = 1)


@dataclass
class _Bank:
    """One bank's control state: its unlock sequence and its write buffer."""

    index: int
    key_stage: int = 0
    locked_until_reset: bool = False
    word: int | None = None                        # flash offset of the buffered word
    data: bytearray = field(default_factory=lambda: bytearray(b"\xff" * FLASH_WORD))
    written: bytearray = field(default_factory=lambda: bytearray(FLASH_WORD))
    erased: bool = True                            # every buffered byte was erased

    def drop(self) -> None:
        self.word = None
        self.data[:] = b"\xff" * FLASH_WORD
        self.written[:] = bytes(FLASH_WORD)
        self.erased = True


class FlashController(Peripheral):
    """RM0433 FLASH registers and the program/erase semantics described above. Same
    interface as the L4's: `wait_states`, `store()`, `expected()`, `reset()`."""

    name = "FLASH"

    def __init__(self, base: int, flash_start: int, flash_size: int, banks: int,
                 memory: ctypes.Array,
                 on_change: Callable[[int, int], None] | None = None) -> None:
        super().__init__(base, 0x1000)
        self.flash_start, self.flash_size, self.banks = flash_start, flash_size, banks
        self.memory = memory
        self.on_change = on_change
        self._banks = [_Bank(i) for i in range(banks)]
        self._completed: tuple[int, bytes] | None = None   # word programmed by the last store
        self._recent: tuple[int, bytes] | None = None      # written again on register access
        self.reset()

    # ---- geometry ----------------------------------------------------------------
    @property
    def bank_bytes(self) -> int:
        return self.flash_size // self.banks

    @property
    def wait_states(self) -> int:
        return self.regs.get(ACR, 0) & 0xF

    def _bank_of(self, offset: int) -> _Bank:
        return self._banks[min(offset // self.bank_bytes, self.banks - 1)]

    @staticmethod
    def _reg(bank: _Bank, offset: int) -> int:
        return offset + BANK_STRIDE * bank.index

    # ---- registers -----------------------------------------------------------------
    def _decode(self, offset: int) -> tuple[_Bank | None, int]:
        """(bank, bank-1 offset) for a per-bank register, (None, offset) otherwise."""
        low = offset & ~3
        if (low & 0xFF) in SHARED:
            return None, low & 0xFF
        bank = low // BANK_STRIDE
        if bank < self.banks and low % BANK_STRIDE in (KEYR, CR, SR, CCR):
            return self._banks[bank], low % BANK_STRIDE
        return None, low

    def read(self, offset: int, size: int) -> int:
        self._recommit()
        bank, register = self._decode(offset)
        if bank is not None and register == SR:
            value = self.regs.get(self._reg(bank, SR), 0)
            if bank.word is not None:
                value |= SR_WBNE
            return value >> (8 * (offset & 3))
        if register == CCR:
            return 0                                        # write-only clear bits
        return self.regs.get(self._reg(bank, register) if bank is not None else register, 0) >> \
            (8 * (offset & 3))

    def write(self, offset: int, size: int, value: int) -> None:
        self._recommit()
        bank, register = self._decode(offset)
        if size != 4:                                       # merge a narrow write first
            lane = 8 * (offset & 3)
            mask = ((1 << (8 * size)) - 1) << lane
            target = self._reg(bank, register) if bank is not None else register
            value = (self.regs.get(target, 0) & ~mask) | ((value << lane) & mask)
        value &= 0xFFFF_FFFF
        if bank is None:
            if register == ACR:
                self.regs[ACR] = value & 0x3F
            elif register not in (OPTSR_CUR,):              # OPTSR_CUR is read-only
                self.regs[register] = value
            return
        if register == KEYR:
            self._unlock_step(bank, value)
        elif register == CR:
            self._write_cr(bank, value)
        elif register == CCR:
            sr = self._reg(bank, SR)
            self.regs[sr] = self.regs.get(sr, 0) & ~(value & SR_FLAGS)
        # SRx is read-only

    def _flag(self, bank: _Bank, flags: int) -> None:
        sr = self._reg(bank, SR)
        self.regs[sr] = self.regs.get(sr, 0) | flags

    def _unlock_step(self, bank: _Bank, value: int) -> None:
        if bank.locked_until_reset:
            return
        if bank.key_stage == 0 and value == KEY1:
            bank.key_stage = 1
        elif bank.key_stage == 1 and value == KEY2:
            cr = self._reg(bank, CR)
            self.regs[cr] = self.regs.get(cr, 0) & ~CR_LOCK
            bank.key_stage = 0
        else:                                   # a wrong key: locked until the next reset
            bank.key_stage = 0
            bank.locked_until_reset = True
            cr = self._reg(bank, CR)
            self.regs[cr] = self.regs.get(cr, 0) | CR_LOCK

    def _write_cr(self, bank: _Bank, value: int) -> None:
        cr = self._reg(bank, CR)
        current = self.regs.get(cr, 0)
        if current & CR_LOCK:
            return                                          # ignored while locked
        stored = value & ~(CR_START | CR_FW)                # both clear themselves
        if value & CR_LOCK:
            stored |= CR_LOCK
        if current & CR_PG and not value & CR_PG and bank.word is not None:
            bank.drop()                             # PG cleared under a partial flash word
            self._flag(bank, SR_PGSERR)
        self.regs[cr] = stored
        if value & CR_LOCK:
            return
        if value & CR_FW and bank.word is not None:
            self._program(bank)
        if value & CR_START:
            self._erase(bank, value)

    # ---- erase --------------------------------------------------------------------------
    def _erase(self, bank: _Bank, cr: int) -> None:
        base = bank.index * self.bank_bytes
        if bool(cr & CR_SER) == bool(cr & CR_BER):
            self._flag(bank, SR_PGSERR)                     # neither or both requested
            return
        if cr & CR_BER:
            start, size = base, self.bank_bytes
        else:
            sector = (cr >> CR_SNB_SHIFT) & 0x7
            start, size = base + sector * SECTOR_BYTES, SECTOR_BYTES
        ctypes.memset(ctypes.addressof(self.memory) + start, 0xFF, size)
        if self._recent is not None and start <= self._recent[0] < start + size:
            self._recent = None                             # the erase wins
        if self.on_change:
            self.on_change(start, size)
        self._flag(bank, SR_EOP)

    # ---- programming through the bus --------------------------------------------------
    @property
    def accepts_stores(self) -> bool:
        """A bank unlocked: CPU stores into flash reach the controller (which programs them
        with PG set, or flags and faults them); all locked, every store faults."""
        return any(not self.regs.get(self._reg(bank, CR), 0) & CR_LOCK for bank in self._banks)

    def store(self, address: int, size: int, value: int) -> bool:
        """A CPU store into flash, before it lands; True when absorbed, False to fault."""
        self._recommit()
        self._completed = None
        offset = address - self.flash_start
        bank = self._bank_of(offset)
        cr = self.regs.get(self._reg(bank, CR), 0)
        if cr & CR_LOCK or not cr & CR_PG:
            self._flag(bank, SR_PGSERR)
            return False
        word = offset & ~(FLASH_WORD - 1)
        if (offset + size - 1) & ~(FLASH_WORD - 1) != word:
            self._flag(bank, SR_INCERR)                     # crosses a flash word
            bank.drop()
            return True
        if bank.word is not None and bank.word != word:
            self._flag(bank, SR_INCERR)                     # another word, buffer not empty
            bank.drop()
            return True
        first = offset - word
        if any(bank.written[first:first + size]):
            self._flag(bank, SR_STRBERR)                    # a byte written twice
            return True
        # the hook runs before the store lands: these bytes still hold the flash's content
        held = ctypes.string_at(ctypes.addressof(self.memory) + offset, size)
        bank.word = word
        bank.erased &= held == b"\xff" * size
        bank.data[first:first + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        bank.written[first:first + size] = b"\x01" * size
        if all(bank.written):
            self._program(bank)
        return True

    def _program(self, bank: _Bank) -> None:
        """Program the buffered flash word (full, or forced with FW)."""
        word, data = bank.word, bytes(bank.data)
        erased, bank_written = bank.erased, bytes(bank.written)
        bank.drop()
        base = ctypes.addressof(self.memory)
        held = ctypes.string_at(base + word, FLASH_WORD)
        if not erased or any(held[i] != 0xFF for i in range(FLASH_WORD) if not bank_written[i]):
            if data != bytes(FLASH_WORD):
                self._flag(bank, SR_OPERR)                  # not a virgin flash word
                return
        ctypes.memmove(base + word, data, FLASH_WORD)
        self._completed = self._recent = (word, data)
        if self.on_change:
            self.on_change(word, FLASH_WORD)
        self._flag(bank, SR_EOP)

    def expected(self, offset: int, before: bytes) -> bytes:
        """What the 8 bytes at `offset` hold after the store just made."""
        if self._completed is not None:
            word, data = self._completed
            if word <= offset < word + FLASH_WORD:
                return data[offset - word:offset - word + 8]
        return before

    def _recommit(self) -> None:
        """Write the last programmed flash word again, over any fix-up that restored the
        erased bytes of its earlier stores after it was programmed (see the module text)."""
        if self._recent is None:
            return
        word, data = self._recent
        address = ctypes.addressof(self.memory) + word
        if ctypes.string_at(address, FLASH_WORD) != data:
            ctypes.memmove(address, data, FLASH_WORD)
            if self.on_change:
                self.on_change(word, FLASH_WORD)

    def reset(self) -> None:
        super().reset()
        self.regs[ACR] = ACR_RESET
        self.regs[OPTCR] = OPTCR_RESET
        self.regs[OPTSR_CUR] = self.regs[OPTSR_PRG] = OPTSR_RESET
        for bank in self._banks:
            self.regs[self._reg(bank, CR)] = CR_RESET
            self.regs[self._reg(bank, SR)] = 0
            self.regs[self._reg(bank, WPSN_CUR)] = self.regs[self._reg(bank, WPSN_PRG)] = \
                WPSN_RESET
            bank.key_stage, bank.locked_until_reset = 0, False
            bank.drop()
        self._recommit()
        self._completed = self._recent = None
