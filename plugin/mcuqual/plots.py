"""Pictures for the report, rendered to PNG bytes (matplotlib, no display)."""
from __future__ import annotations

import io


def layer_cycles_chart(layers: dict[str, int], clock_hz: int, title: str) -> bytes:
    """Horizontal bars: milliseconds per layer at the board's clock, slowest visible at once."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(layers)
    ms = [1000.0 * layers[name] / clock_hz for name in names]
    fig, axis = plt.subplots(figsize=(8, 0.28 * len(names) + 1.2))
    axis.barh(range(len(names)), ms, color="#4a7ab5")
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel(f"ms per inference at {clock_hz / 1e6:g} MHz (emulated)")
    axis.set_title(title, fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
