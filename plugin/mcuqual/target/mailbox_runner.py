"""Running inferences through the firmware mailbox, on any probe-shaped target.

The same protocol drives the virtual board and (through pyOCD) a physical one:
wait for the firmware to publish its mailbox, write an input, set the command,
wait for the sequence number to advance, read output and measurements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from elftools.elf.elffile import ELFFile

from mcuqual.target import mailbox
from mcuqual.common.errors import McuqualError


class DebugAccess(Protocol):
    """What the mailbox protocol needs of a board: memory access, letting the core run, the
    ITM log. BoardConnection (any pyOCD probe) and VirtualBoard (the emulator alone) are both."""

    def read_memory(self, address: int, size: int) -> bytes: ...
    def write_memory(self, address: int, data: bytes) -> None: ...
    def read_u32(self, address: int) -> int: ...
    def write_u32(self, address: int, value: int) -> None: ...
    def run(self, until, max_cycles: int, timeout_s: float) -> None: ...
    def stop_on_write(self, address: int) -> None: ...
    def stop_at(self, address: int) -> None: ...
    def trace_text(self) -> str: ...


class MailboxError(McuqualError):
    """The firmware's mailbox is missing, malformed or reports an error."""


@dataclass
class InferenceResult:
    output: np.ndarray
    cycles_total: int
    layer_cycles: list[int]
    arena_high_water_bytes: int
    stack_high_water_bytes: int


@dataclass
class MailboxRunner:
    target: DebugAccess
    elf: Path
    boot_budget_cycles: int = 50_000_000
    inference_budget_cycles: int = 4_000_000_000
    timeout_s: float = 600.0
    header: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with open(self.elf, "rb") as handle:
            symbols = ELFFile(handle).get_section_by_name(".symtab")
            symbol = symbols.get_symbol_by_name("mq_mailbox")
            done = symbols.get_symbol_by_name("mq_inference_done")
        if not symbol:
            raise MailboxError(f"{self.elf}: no mq_mailbox symbol.")
        self.address = symbol[0]["st_value"]
        # the instruction each inference ends at (Thumb bit cleared); older firmware has none
        self.done_address = done[0]["st_value"] & ~1 if done else None

    def _read_header(self) -> dict[str, int]:
        return mailbox.decode_header(self.target.read_memory(self.address, mailbox.HEADER_BYTES))

    def _field(self, name: str) -> int:
        return self.target.read_u32(self.address + mailbox.offset_of(name))

    def log_lines(self) -> list[str]:
        """The firmware's ITM log (stimulus port 0) so far, as received over SWO."""
        return [line for line in self.target.trace_text().splitlines() if line]

    def boot(self) -> dict[str, int]:
        """Run from reset until the firmware has published its mailbox and waits."""
        self.target.run(lambda: self._field("magic") == mailbox.MAGIC and
                        self._field("state") in (1, 4, 5),
                        self.boot_budget_cycles, self.timeout_s)
        self.header = self._read_header()
        if self.header["version"] != mailbox.VERSION:
            raise MailboxError(f"firmware mailbox version {self.header['version']}, this mcuqual "
                               f"speaks {mailbox.VERSION}: rebuild the firmware.")
        if mailbox.STATES.get(self.header["state"]) == "error":
            raise MailboxError(f"firmware reports error {self.header['error_code']} at boot.")
        return self.header

    def infer(self, image: np.ndarray) -> InferenceResult:
        data = np.ascontiguousarray(image, dtype=np.int8).reshape(-1).tobytes()
        if len(data) != self.header["input_bytes"]:
            raise MailboxError(f"input of {len(data)} bytes, firmware expects "
                               f"{self.header['input_bytes']}.")
        sequence = self._field("sequence")
        self.target.write_memory(self.address + self.header["input_offset"], data)
        self.target.write_u32(self.address + mailbox.offset_of("command"), mailbox.COMMAND_RUN)
        # armed after the command: an armed virtual board runs uncounted until the stop
        if self.done_address is not None:
            self.target.stop_at(self.done_address)
        else:
            self.target.stop_on_write(self.address + mailbox.offset_of("sequence"))
        self.target.run(lambda: self._field("sequence") != sequence or
                        self._field("state") in (4, 5),
                        self.inference_budget_cycles, self.timeout_s)
        header = self._read_header()
        if mailbox.STATES.get(header["state"]) in ("fault", "error"):
            raise MailboxError(f"firmware entered state {mailbox.STATES[header['state']]} "
                               f"(pc=0x{header['fault_pc']:08x}, cfsr=0x{header['fault_cfsr']:08x}).")
        layers = header["layers"]
        raw = self.target.read_memory(self.address + header["layer_cycles_offset"], 4 * layers)
        output = np.frombuffer(self.target.read_memory(self.address + header["output_offset"],
                                                       header["output_bytes"]), dtype=np.int8)
        return InferenceResult(output.copy(), header["cycles_total"],
                               np.frombuffer(raw, dtype="<u4").astype(int).tolist(),
                               header["arena_high_water_bytes"], header["stack_high_water_bytes"])

    def finish(self) -> list[str]:
        """Let the firmware finish its log lines, then return every line so far."""
        self.target.run(lambda: self._field("state") == 1, self.boot_budget_cycles, self.timeout_s)
        return self.log_lines()
