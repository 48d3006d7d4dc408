"""Evaluation metrics: pure functions of features / predictions, and the evaluator
classifier that turns images into them.

Image metrics (on the features and ``p(y|x)`` of ``Evaluator``, a conv net jaxgan trains
itself and caches):

- ``frechet_distance`` / ``gaussian_frechet``: FID (quality and coverage, mixed).
- ``kid``: Kernel Inception Distance, unbiased, with its std over subsets.
- ``classifier_score``: ``exp(E KL(p(y|x) || p(y)))``, the Inception score formula.
- ``precision_recall``: improved precision (quality) and recall (coverage).
- ``class_entropy``, ``conditional_accuracy``.

2-D mixtures: ``mode_metrics`` (PacGAN's modes covered / high quality / reverse KL).

Putting it together: ``get_evaluator`` then ``evaluate_images``; ``reference_anchors``
gives the same numbers for real test images and for noise.
"""

from jaxgan.metrics.evaluator import (
    Evaluator,
    EvaluatorNet,
    EvaluatorRecipe,
    default_cache_dir,
    evaluate_features,
    evaluate_images,
    get_evaluator,
    reference_anchors,
)
from jaxgan.metrics.frechet import feature_stats, frechet_distance, gaussian_frechet
from jaxgan.metrics.kid import kid, mmd2_unbiased
from jaxgan.metrics.modes import mode_metrics
from jaxgan.metrics.precision_recall import precision_recall
from jaxgan.metrics.score import class_entropy, classifier_score, conditional_accuracy

__all__ = [
    "Evaluator",
    "EvaluatorNet",
    "EvaluatorRecipe",
    "class_entropy",
    "classifier_score",
    "conditional_accuracy",
    "default_cache_dir",
    "evaluate_features",
    "evaluate_images",
    "feature_stats",
    "frechet_distance",
    "gaussian_frechet",
    "get_evaluator",
    "kid",
    "mmd2_unbiased",
    "mode_metrics",
    "precision_recall",
    "reference_anchors",
]
