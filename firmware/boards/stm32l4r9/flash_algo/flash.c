/*
 * Flash programming algorithm for the STM32L4R9 (RM0432 section 3.3), in the
 * CMSIS flash-algorithm shape pyOCD loads: Init, UnInit, EraseSector,
 * EraseChip, ProgramPage, each returning 0 on success, plus the FlashDevice
 * description. It runs from wherever the debugger places it in SRAM, so it
 * keeps no global state and takes no absolute addresses of its own code or
 * data: the flash controller is reached through a constant register address.
 *
 * Dual-bank mode (option bit DBANK, the factory default) has 4 KB pages,
 * 256 per bank; single-bank mode has 8 KB pages over the whole 2 MB.
 */
#include <stdint.h>

#define FLASH_START       0x08000000u
#define FLASH_BYTES       0x00200000u
#define BANK_BYTES        0x00100000u
#define PAGE_BYTES_DUAL   0x1000u
#define PAGE_BYTES_SINGLE 0x2000u

#define FLASH_REG(offset) (*(volatile uint32_t *)(0x40022000u + (offset)))
#define FLASH_KEYR        FLASH_REG(0x08u)
#define FLASH_SR          FLASH_REG(0x10u)
#define FLASH_CR          FLASH_REG(0x14u)
#define FLASH_OPTR        FLASH_REG(0x20u)

#define KEY1              0x45670123u
#define KEY2              0xCDEF89ABu
#define SR_EOP            (1u << 0)
#define SR_ERRORS         0xC3FAu        /* OPERR..FASTERR, RDERR, OPTVERR */
#define SR_BSY            (1u << 16)
#define CR_PG             (1u << 0)
#define CR_PER            (1u << 1)
#define CR_MER1           (1u << 2)
#define CR_PNB_POS        3u
#define CR_BKER           (1u << 11)
#define CR_MER2           (1u << 15)
#define CR_STRT           (1u << 16)
#define CR_LOCK           (1u << 31)
#define OPTR_DBANK        (1u << 22)

/* Bounded waits: a controller that never finishes is an error, not a hang. */
#define BUSY_SPINS        50000000u

static int wait_idle(void)
{
    for (uint32_t spins = 0; spins < BUSY_SPINS; ++spins) {
        if (!(FLASH_SR & SR_BSY)) {
            return (FLASH_SR & SR_ERRORS) ? 1 : 0;
        }
    }
    return 1;
}

static void clear_status(void)
{
    FLASH_SR = SR_ERRORS | SR_EOP;
}

int Init(uint32_t address, uint32_t clock_hz, uint32_t function)
{
    (void)address;
    (void)clock_hz;
    (void)function;
    if (FLASH_CR & CR_LOCK) {
        FLASH_KEYR = KEY1;
        FLASH_KEYR = KEY2;
    }
    clear_status();
    return (FLASH_CR & CR_LOCK) ? 1 : 0;
}

int UnInit(uint32_t function)
{
    (void)function;
    FLASH_CR = CR_LOCK;
    return 0;
}

int EraseChip(void)
{
    if (wait_idle()) {
        clear_status();
    }
    FLASH_CR = CR_MER1 | CR_MER2;
    FLASH_CR = CR_MER1 | CR_MER2 | CR_STRT;
    int failed = wait_idle();
    FLASH_CR = 0;
    return failed;
}

int EraseSector(uint32_t address)
{
    uint32_t offset = address - FLASH_START;
    uint32_t control;
    if (offset >= FLASH_BYTES) {
        return 1;
    }
    if (FLASH_OPTR & OPTR_DBANK) {
        uint32_t bank = offset / BANK_BYTES;
        uint32_t page = (offset % BANK_BYTES) / PAGE_BYTES_DUAL;
        control = CR_PER | (page << CR_PNB_POS) | (bank ? CR_BKER : 0u);
    } else {
        control = CR_PER | ((offset / PAGE_BYTES_SINGLE) << CR_PNB_POS);
    }
    if (wait_idle()) {
        clear_status();
    }
    FLASH_CR = control;
    FLASH_CR = control | CR_STRT;
    int failed = wait_idle();
    FLASH_CR = 0;
    return failed;
}

int ProgramPage(uint32_t address, uint32_t size, const uint8_t *data)
{
    if ((address & 7u) || address < FLASH_START || address + size > FLASH_START + FLASH_BYTES) {
        return 1;
    }
    if (wait_idle()) {
        clear_status();
    }
    FLASH_CR = CR_PG;
    volatile uint32_t *target = (volatile uint32_t *)address;
    for (uint32_t done = 0; done < size; done += 8u) {
        uint32_t words[2] = {0xFFFFFFFFu, 0xFFFFFFFFu};
        for (uint32_t i = 0; i < 8u && done + i < size; ++i) {
            uint32_t shift = 8u * (i & 3u);
            words[i >> 2] &= ~(0xFFu << shift);
            words[i >> 2] |= (uint32_t)data[done + i] << shift;
        }
        target[0] = words[0];             /* a double word is two word stores */
        target[1] = words[1];
        target += 2;
        if (wait_idle()) {
            FLASH_CR = 0;
            return 1;
        }
        FLASH_SR = SR_EOP;
    }
    FLASH_CR = 0;
    return 0;
}

/* The FlashDevice record (CMSIS-Pack FLM format) pyOCD reads from the ELF. */
struct flash_sector {
    uint32_t size_bytes;
    uint32_t offset;
};

struct flash_device {
    uint16_t version;
    char name[128];
    uint16_t type;                 /* 1 = on-chip flash */
    uint32_t start;
    uint32_t size_bytes;
    uint32_t page_bytes;           /* programming unit */
    uint32_t reserved;
    uint8_t erased_value;
    uint32_t program_timeout_ms;
    uint32_t erase_timeout_ms;
    struct flash_sector sectors[2];
};

__attribute__((section("DevDscr"), used)) const struct flash_device FlashDevice = {
    0x0101u,
    "STM32L4R9 2 MB dual-bank flash (mcuqual)",
    1u,
    FLASH_START,
    FLASH_BYTES,
    PAGE_BYTES_DUAL,
    0u,
    0xFFu,
    100u,
    6000u,
    {{PAGE_BYTES_DUAL, 0u}, {0xFFFFFFFFu, 0xFFFFFFFFu}},
};
