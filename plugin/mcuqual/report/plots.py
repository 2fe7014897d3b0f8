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

    from mcuqual.power import energy_windows

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
    axis.set_ylim(bottom=0)
    axis.set_ylabel(f"mA at {trace.supply_v:g} V ({trace.evidence.label})")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    return figure_png(fig)


def layer_cycles_chart(layers: dict[str, int], clock_hz: int, title: str,
                       evidence: str = "emulated") -> bytes:
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
    axis.set_xlabel(f"ms per inference at {clock_hz / 1e6:g} MHz ({evidence})")
    axis.set_title(title, fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    return figure_png(fig)


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def confusion_chart(matrix, title: str, classes: tuple[str, ...] = CIFAR10_CLASSES) -> bytes:
    """Row-normalized confusion matrix: where each true class's images went."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rates = 100.0 * matrix / np.maximum(1, matrix.sum(axis=1, keepdims=True))
    fig, axis = plt.subplots(figsize=(6.4, 5.6))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=100)
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(classes)), classes, fontsize=8)
    for row in range(len(classes)):
        for col in range(len(classes)):
            if rates[row, col] >= 1:
                axis.text(col, row, f"{rates[row, col]:.0f}", ha="center", va="center",
                          fontsize=7, color="white" if rates[row, col] > 50 else "black")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title, fontsize=10)
    fig.colorbar(image, ax=axis, fraction=0.046, label="% of the true class")
    return figure_png(fig)


def memory_chart(flash: dict[str, int], flash_capacity: int, ram: dict[str, int],
                 ram_capacity: int, title: str, limits: dict[str, tuple[str, int]] | None = None) -> bytes:
    """Flash and RAM, each a stacked bar of what fills it on the scale of the board's capacity;
    `limits` draws a requirement's line ({"REQ-ARENA": ("ram", bytes)})."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ("#4a7ab5", "#f0a030", "#3a9a4a", "#b04a4a")
    fig, axes = plt.subplots(2, 1, figsize=(8, 3.8))
    for axis, memory, parts, capacity in ((axes[0], "flash", flash, flash_capacity),
                                          (axes[1], "ram", ram, ram_capacity)):
        left = 0.0
        for index, (name, size) in enumerate(parts.items()):
            axis.barh(0, size / 1024, left=left, color=colours[index % len(colours)],
                      label=f"{name} {size / 1024:.1f} KB")
            left += size / 1024
        for req, (where, limit) in (limits or {}).items():
            if where == memory:
                axis.axvline(limit / 1024, color="black", linestyle="--", linewidth=1)
                # below the bar, inside the axes: clear of the title and the legend
                axis.text(limit / 1024, -0.48, f" {req} {limit / 1024:.0f} KB", fontsize=7,
                          va="bottom")
        axis.set_xlim(0, capacity / 1024)
        axis.set_yticks([0], [f"{memory} ({capacity / 1024:.0f} KB)"])
        axis.set_ylim(-0.5, 0.5)
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[1].set_xlabel("KB")
    axes[0].set_title(title, fontsize=10)
    return figure_png(fig)
