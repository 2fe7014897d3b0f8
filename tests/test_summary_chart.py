"""The deployment summary's accuracy/latency chart stays legible when models crowd together."""
from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from mcuqual.report.summary import _label_points  # noqa: E402


def test_labels_of_neighbouring_models_neither_overlap_nor_leave_the_axes():
    # the shipped zoo's last run: three models within 4 points and a factor of two in latency
    points = [("ds_cnn_lite (emulated)", 325.7, 89.76), ("ds_cnn_m (emulated)", 107.9, 84.25),
              ("resnet8 (emulated)", 290.8, 85.73), ("vgg_baseline (emulated)", 611.1, 85.36),
              ("ds_cnn_s (emulated)", 42.7, 80.15), ("ds_cnn_xs (emulated)", 19.8, 72.59)]
    fig, axis = plt.subplots(figsize=(7, 4.5))
    axis.set_xscale("log")
    axis.set_xlim(6.3, 1222.2)
    axis.set_ylim(70.6, 100)
    for _, x, y in points:
        axis.scatter(x, y)
    _label_points(fig, axis, points)
    renderer = fig.canvas.get_renderer()
    boxes = {note.get_text(): note.get_window_extent(renderer) for note in axis.texts}
    assert set(boxes) == {text for text, _, _ in points}
    inside = axis.get_window_extent(renderer)
    for text, box in boxes.items():
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, text
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        assert not box_a.overlaps(box_b), f"{a} over {b}"
    # nor does any label cover another model's point (vgg_baseline's label once sat on resnet8)
    for text, x, y in points:
        px, py = axis.transData.transform((x, y))
        for other, box in boxes.items():
            if other != text:
                assert not box.contains(px, py), f"{other} covers the point of {text}"
    plt.close(fig)
