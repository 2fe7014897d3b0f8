/*
 * Flash programming algorithm for the STM32U585 (RM0456 section 7, "Embedded flash
 * memory (FLASH)"), in the CMSIS flash-algorithm shape pyOCD loads: Init, UnInit,
 * EraseSector, EraseChip, ProgramPage, each returning 0 on success, plus the FlashDevice
 * description. It runs from wherever the debugger places it in SRAM, so it keeps no
 * global state and takes no absolute addresses of its own code or data: the flash
 * controller is reached through a constant register address.
 *
 * The 2 MB are two banks of 1 MB, each of 128 pages of 8 KB (the 2 MB part is always
 * dual-bank). The part ships with TrustZone disabled (option bit TZEN = 0), so the
 * non-secure registers do everything: NSKEYR, NSSR, NSCR. Programming is by quad-word
 * (128 bits, written as four words to one 16-byte aligned quad-word, RM0456 "Flash
 * memory programming sequence"); NSSR.WDW says a quad-word is waiting for its remaining
 * words and BSY that one is being written.
 */
#include <stdint.h>

#define FLASH_START       0x08000000u
#define FLASH_BYTES       0x00200000u
#define BANK_BYTES        0x00100000u
#define PAGE_BYTES        0x2000u
#define QUAD_WORD_BYTES   16u

#define FLASH_REG(offset) (*(volatile uint32_t *)(0x40022000u + (offset)))
#define FLASH_NSKEYR      FLASH_REG(0x08u)
#define FLASH_NSSR        FLASH_REG(0x20u)
#define FLASH_NSCR        FLASH_REG(0x28u)
#define FLASH_OPTR        FLASH_REG(0x40u)

#define KEY1              0x45670123u
#define KEY2              0xCDEF89ABu
#define NSSR_EOP          (1u << 0)
#define NSSR_ERRORS       0x20FAu        /* OPERR PROGERR WRPERR PGAERR SIZERR PGSERR OPTWERR */
#define NSSR_BSY          (1u << 16)
#define NSSR_WDW          (1u << 17)
#define NSCR_PG           (1u << 0)
#define NSCR_PER          (1u << 1)
#define NSCR_MER1         (1u << 2)
#define NSCR_PNB_POS      3u             /* 7 bits: page 0..127 of the bank */
#define NSCR_BKER         (1u << 11)     /* 0: bank 1, 1: bank 2 */
#define NSCR_MER2         (1u << 15)
#define NSCR_STRT         (1u << 16)
#define NSCR_LOCK         (1u << 31)
#define OPTR_SWAP_BANK    (1u << 20)     /* 1: bank 2 answers at 0x0800_0000 */

/* Bounded waits: a controller that never finishes is an error, not a hang. */
#define BUSY_SPINS        50000000u

static int wait_idle(void)
{
    for (uint32_t spins = 0; spins < BUSY_SPINS; ++spins) {
        if (!(FLASH_NSSR & (NSSR_BSY | NSSR_WDW))) {
            return (FLASH_NSSR & NSSR_ERRORS) ? 1 : 0;
        }
    }
    return 1;
}

static void clear_status(void)
{
    FLASH_NSSR = NSSR_ERRORS | NSSR_EOP;
}

int Init(uint32_t address, uint32_t clock_hz, uint32_t function)
{
    (void)address;
    (void)clock_hz;
    (void)function;
    if (FLASH_NSCR & NSCR_LOCK) {
        FLASH_NSKEYR = KEY1;
        FLASH_NSKEYR = KEY2;
    }
    clear_status();
    return (FLASH_NSCR & NSCR_LOCK) ? 1 : 0;
}

int UnInit(uint32_t function)
{
    (void)function;
    FLASH_NSCR = NSCR_LOCK;
    return 0;
}

static int start(uint32_t control)
{
    if (wait_idle()) {
        clear_status();
    }
    FLASH_NSCR = control;
    FLASH_NSCR = control | NSCR_STRT;
    int failed = wait_idle();
    FLASH_NSCR = 0;
    return failed;
}

int EraseChip(void)
{
    return start(NSCR_MER1 | NSCR_MER2);
}

int EraseSector(uint32_t address)
{
    uint32_t offset = address - FLASH_START;
    if (offset >= FLASH_BYTES) {
        return 1;
    }
    /* BKER names the physical bank; with SWAP_BANK the banks trade addresses */
    uint32_t bank = offset / BANK_BYTES;
    if (FLASH_OPTR & OPTR_SWAP_BANK) {
        bank ^= 1u;
    }
    uint32_t page = (offset % BANK_BYTES) / PAGE_BYTES;
    return start(NSCR_PER | (page << NSCR_PNB_POS) | (bank ? NSCR_BKER : 0u));
}

/* The little-endian word of `data` at `index`, padded with the erased value 0xFF past
 * `size` (a page's tail need not fill its last quad-word). */
static uint32_t word_at(const uint8_t *data, uint32_t index, uint32_t size)
{
    uint32_t word = 0;
    for (uint32_t i = 0; i < 4u; ++i) {
        uint32_t byte = (index + i < size) ? data[index + i] : 0xFFu;
        word |= byte << (8u * i);
    }
    return word;
}

int ProgramPage(uint32_t address, uint32_t size, const uint8_t *data)
{
    if ((address & (QUAD_WORD_BYTES - 1u)) || address < FLASH_START ||
        address + size > FLASH_START + FLASH_BYTES) {
        return 1;
    }
    if (wait_idle()) {
        clear_status();
    }
    FLASH_NSCR = NSCR_PG;
    volatile uint32_t *target = (volatile uint32_t *)address;
    for (uint32_t done = 0; done < size; done += QUAD_WORD_BYTES) {
        for (uint32_t w = 0; w < 4u; ++w) {   /* a quad-word is four word stores */
            target[w] = word_at(data, done + 4u * w, size);
        }
        target += 4;
        if (wait_idle()) {
            FLASH_NSCR = 0;
            return 1;
        }
        FLASH_NSSR = NSSR_EOP;
    }
    FLASH_NSCR = 0;
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

/* Timeouts for one page program (512 quad-words) and one page erase: generous bounds
 * for pyOCD, not characterised figures. */
__attribute__((section("DevDscr"), used)) const struct flash_device FlashDevice = {
    0x0101u,
    "STM32U585 2 MB dual-bank flash (mcuqual)",
    1u,
    FLASH_START,
    FLASH_BYTES,
    PAGE_BYTES,
    0u,
    0xFFu,
    500u,
    6000u,
    {{PAGE_BYTES, 0u}, {0xFFFFFFFFu, 0xFFFFFFFFu}},
};
