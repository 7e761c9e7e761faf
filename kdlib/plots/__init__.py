"""One seaborn theme and the figure helpers of every notebook: the shared ones in :mod:`kdlib.plots.common`, the
forest plot of graded verdicts in :mod:`kdlib.plots.verdicts`, and one module per notebook family's own figures."""

from kdlib.plots.active import differences_vs_queries, paired_by_round
from kdlib.plots.common import PALETTE, accuracy_vs_labels, method_bars, method_palette, save_figure, set_theme
from kdlib.plots.graphs import accuracy_vs_noise, metric_by_round
from kdlib.plots.kdzero import accuracy_by_method, search_progress
from kdlib.plots.l2t import accuracy_vs_student_steps, loss_surfaces, teacher_steps
from kdlib.plots.lelp import differences_to_baseline, selection_landscape
from kdlib.plots.nas import nas_best_so_far, nas_fronts
from kdlib.plots.scaling import gap_bars, schedule_check, validation_curves
from kdlib.plots.variance import floor_vs_lambda, net_diagnostics, sigma2_vs_lambda, suboptimality_curves
from kdlib.plots.verdicts import VERDICT_COLOURS, forest
from kdlib.plots.weighting import weights_right_vs_wrong

__all__ = [
    "PALETTE", "VERDICT_COLOURS", "accuracy_by_method", "accuracy_vs_labels", "accuracy_vs_noise",
    "accuracy_vs_student_steps", "differences_to_baseline", "differences_vs_queries", "floor_vs_lambda", "forest", "gap_bars", "loss_surfaces", "method_bars", "method_palette",
    "metric_by_round", "nas_best_so_far", "nas_fronts", "net_diagnostics", "paired_by_round", "save_figure", "schedule_check", "search_progress",
    "selection_landscape", "set_theme", "sigma2_vs_lambda", "suboptimality_curves", "teacher_steps", "validation_curves", "weights_right_vs_wrong",
]
