"""Pictures for the report, rendered to PNG bytes (matplotlib, no display)."""
from __future__ import annotations

import io


def figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def energy_window_chart(trace, title: str) -> bytes:
    """The monitor's current over time, each marked inference window shaded with its energy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .power import energy_windows

    step = max(1, len(trace.current_a) // 5000)          # a plot needs no 10^5 points
    seconds = np.arange(0, len(trace.current_a), step) * trace.sample_period_s
    fig, axis = plt.subplots(figsize=(8, 3.2))
    axis.plot(seconds, 1000.0 * trace.current_a[::step], color="#4a7ab5", linewidth=0.8)
    for window in energy_windows(trace):
        axis.axvspan(window.start_s, window.start_s + window.duration_s, color="#f0a030",
                     alpha=0.25)
        axis.annotate(f"{window.energy_mj:.3g} mJ", (window.start_s + window.duration_s / 2,
                                                      window.mean_current_ma),
                      ha="center", va="bottom", fontsize=8)
    axis.set_xlabel("s")
    axis.set_ylabel(f"mA at {trace.supply_v:g} V ({trace.evidence.label})")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    return figure_png(fig)


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
    return figure_png(fig)
