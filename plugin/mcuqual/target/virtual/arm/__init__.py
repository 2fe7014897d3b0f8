"""Arm architecture parts of the virtual board, one per file as pyOCD's coresight/ has them:
the CoreSight component base and IDs, the System Control Space (SCB, CoreDebug), DWT, ITM,
TPIU and the ROM table. They know the Armv7-M architecture, not any vendor's chip."""
