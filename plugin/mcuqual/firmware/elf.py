"""What an ELF says about a deployment: bytes of model constants, arena, code, stack, mailbox."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from mcuqual.common.errors import McuqualError

FLASH_SECTIONS = (".isr_vector", ".mq_model", ".text", ".rodata", ".ARM.exidx")


@dataclass(frozen=True)
class ElfFigures:
    weights_bytes: int        # .mq_model: weights, biases, requantization parameters
    arena_bytes: int          # .mq_arena: the static activation arena
    code_bytes: int           # .text
    rodata_bytes: int         # other constants
    data_bytes: int           # initialized RAM (its image also sits in flash)
    bss_bytes: int
    stack_bytes: int
    flash_used_bytes: int
    ram_used_bytes: int
    mailbox_address: int
    mailbox_bytes: int
    entry: int


def analyze(path: Path) -> ElfFigures:
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            sizes = {s.name: s["sh_size"] for s in elf.iter_sections()}
            symbols = elf.get_section_by_name(".symtab")
            mailbox = symbols.get_symbol_by_name("mq_mailbox") if symbols else None
            entry = elf.header["e_entry"]
    except Exception as exc:  # pyelftools raises assorted errors on bad files
        raise McuqualError(f"{path}: not a readable ELF ({exc}).") from exc
    if not mailbox:
        raise McuqualError(f"{path}: no mq_mailbox symbol; not a qualification firmware.")
    get = sizes.get
    flash = sum(get(name, 0) for name in FLASH_SECTIONS) + get(".data", 0)
    ram = get(".data", 0) + get(".bss", 0) + get(".mq_arena", 0) + get(".stack", 0)
    return ElfFigures(
        weights_bytes=get(".mq_model", 0), arena_bytes=get(".mq_arena", 0),
        code_bytes=get(".text", 0), rodata_bytes=get(".rodata", 0), data_bytes=get(".data", 0),
        bss_bytes=get(".bss", 0), stack_bytes=get(".stack", 0), flash_used_bytes=flash,
        ram_used_bytes=ram, mailbox_address=mailbox[0]["st_value"],
        mailbox_bytes=mailbox[0]["st_size"], entry=entry)


def symbol_address(path: Path, name: str) -> int | None:
    """Where the ELF puts the symbol `name`, or None if it has none."""
    with open(path, "rb") as handle:
        symbols = ELFFile(handle).get_section_by_name(".symtab")
        found = symbols.get_symbol_by_name(name) if symbols else None
    return found[0]["st_value"] if found else None


def function_at(path: Path, address: int) -> str | None:
    """The function whose code holds `address` (Thumb bit ignored), from the ELF's symbols:
    "name+0xoffset", or None when no function covers it."""
    address &= ~1
    with open(path, "rb") as handle:
        symbols = ELFFile(handle).get_section_by_name(".symtab")
        for symbol in symbols.iter_symbols() if symbols else ():
            if symbol["st_info"]["type"] != "STT_FUNC" or not symbol["st_size"]:
                continue
            start = symbol["st_value"] & ~1
            if start <= address < start + symbol["st_size"]:
                return f"{symbol.name}+0x{address - start:x}"
    return None
