"""The PNG of a run's curves (loss terms and learning rate by step, evaluation metrics) next to the model."""

from __future__ import annotations

from pathlib import Path

SKIP_NOTE = "training_curves.png not written: matplotlib is not installed (pip install matplotlib)"


def write_curves(path: Path, result) -> str | None:
    """Plot ``result.history`` and ``result.evaluations`` to ``path``; a note instead when matplotlib is
    missing or there is nothing to plot, else None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return SKIP_NOTE
    history, evaluations = result.history, result.evaluations
    if not history:
        return None
    terms = [k for k in history[0] if k not in ("step", "lr", "ex_s")]
    metrics = [k for k in (evaluations[0] if evaluations else {})
               if k not in ("step", "epoch", "epoch_end") and isinstance(evaluations[0][k], (int, float))
               and not isinstance(evaluations[0][k], bool)]
    panels = 3 if metrics else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
    steps = [h["step"] for h in history]
    for term in terms:
        axes[0].plot(steps, [h.get(term) for h in history], label=term, linewidth=1.5 if term == "loss" else 1)
    axes[0].set(title="training loss by term", xlabel="step")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [h["lr"] for h in history], color="tab:gray")
    axes[1].set(title="learning rate", xlabel="step")
    if metrics:
        eval_steps = [e["step"] for e in evaluations]
        for metric in metrics:
            axes[2].plot(eval_steps, [e.get(metric) for e in evaluations], marker="o", markersize=3, label=metric)
        axes[2].set(title="evaluation", xlabel="step")
        axes[2].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
