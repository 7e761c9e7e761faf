"""Records, comparisons, declared claims and their graded verdicts, and the ``results/NN_name.json`` files.

Modules, one job each:

* :mod:`~kdlib.results.records`: per-seed records, mean ± std, results files (``save_results``);
* :mod:`~kdlib.results.comparisons`: paired / pooled / headroom comparisons, Welch differences, difference tables;
* :mod:`~kdlib.results.declarations`: claims declared before the run, the project's SESOI rule;
* :mod:`~kdlib.results.estimates`: per-task estimates, equal-weight pooling over tasks, deterministic checks;
* :mod:`~kdlib.results.power`: replicates planned from a pilot's spread;
* :mod:`~kdlib.results.grading`: the headroom gate, Holm, verdicts (``grade``);
* :mod:`~kdlib.results.report`: claims tables, loud lines and summary lines;
* :mod:`~kdlib.results.readme`: the README's results block (``python -m kdlib.results``);
* :mod:`~kdlib.results.provisional`: verdicts of the committed records (``python -m kdlib.results provisional``);
* :mod:`~kdlib.results.legacy`: the first regime's yes / no ``Claim``, until notebooks 01-06 are re-run.
"""

from kdlib.results.comparisons import (
    PairedComparison,
    difference_table,
    headroom_comparison,
    paired_comparison,
    paired_estimates,
    per_seed_differences,
    pooled_comparison,
    welch_difference,
)
from kdlib.results.declarations import SESOI_PP, Declaration, Declarations, smallest_effect_of_interest
from kdlib.results.estimates import Deterministic, Estimate, pooled
from kdlib.results.grading import VERDICTS, Result, Verdict, classify, gate, grade, holm_levels
from kdlib.results.legacy import Claim, claims_table, report_claims
from kdlib.results.power import PowerPlan, replicates_for, upper_spread
from kdlib.results.provenance import file_commit, provenance
from kdlib.results.readme import readme_table, update_readme
from kdlib.results.records import RECORD_FIELDS, Record, aggregate, mean_std_table, records_frame, save_results, to_frame
from kdlib.results.report import report_verdicts, summary_line, verdict_table

__all__ = [
    "RECORD_FIELDS", "SESOI_PP", "VERDICTS", "Claim", "Declaration", "Declarations", "Deterministic", "Estimate", "PairedComparison",
    "PowerPlan", "Record", "Result", "Verdict", "aggregate", "claims_table", "classify", "difference_table", "file_commit", "gate",
    "grade", "headroom_comparison", "holm_levels", "mean_std_table", "paired_comparison", "paired_estimates", "per_seed_differences",
    "pooled", "pooled_comparison", "provenance", "readme_table", "records_frame", "replicates_for", "report_claims", "report_verdicts",
    "save_results", "smallest_effect_of_interest", "summary_line", "to_frame", "update_readme", "upper_spread", "verdict_table",
    "welch_difference",
]
