/*
 * The Armv7-M / Armv8-M Mainline system registers the firmware uses, at the addresses
 * the architecture fixes for every Cortex-M3/M4/M7/M33 (Armv7-M ARM B3.2 System Control
 * Space, C1 debug and trace: DEMCR, DWT, ITM). Vendor registers live in each board's
 * header; generic firmware (app/, runtime/) includes only this and board.h.
 */
#ifndef MQ_ARMV7M_H
#define MQ_ARMV7M_H

#include <stdint.h>

#define MQ_REG(address) (*(volatile uint32_t *)(address))

/* ---- system control (B3.2) ---------------------------------------------------- */
#define SCB_VTOR            MQ_REG(0xE000ED08u)
#define SCB_CPACR           MQ_REG(0xE000ED88u)
#define SCB_CFSR            MQ_REG(0xE000ED28u)
#define SCB_HFSR            MQ_REG(0xE000ED2Cu)
#define SCB_MMFAR           MQ_REG(0xE000ED34u)
#define SCB_BFAR            MQ_REG(0xE000ED38u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

/* ---- debug and trace: DEMCR, DWT, ITM (C1) ----------------------------------- */
#define DEMCR               MQ_REG(0xE000EDFCu)
#define DEMCR_TRCENA        (1u << 24)
#define DWT_CTRL            MQ_REG(0xE0001000u)
#define DWT_CYCCNT          MQ_REG(0xE0001004u)
#define DWT_CTRL_CYCCNTENA  (1u << 0)
#define ITM_STIM_BASE       0xE0000000u
#define ITM_STIM32(port)    MQ_REG(ITM_STIM_BASE + 4u * (port))
#define ITM_STIM8(port)     (*(volatile uint8_t *)(ITM_STIM_BASE + 4u * (port)))
#define ITM_TER             MQ_REG(0xE0000E00u)
#define ITM_TCR             MQ_REG(0xE0000E80u)
#define ITM_LAR             MQ_REG(0xE0000FB0u)
#define ITM_TCR_ITMENA      (1u << 0)
#define ITM_TCR_SWOENA      (1u << 4)
#define ITM_TCR_BUSID_POS   16u
#define CORESIGHT_UNLOCK    0xC5ACCE55u

#endif /* MQ_ARMV7M_H */
