"""wtal-kit: weakly-supervised temporal action localization with deep metric learning.

The method is Islam & Radke, "Weakly Supervised Temporal Action Localization Using
Deep Metric Learning", WACV 2020. The core (this package) imports without any
Jupyter, ipywidgets, plotly or voila package; the dashboards live in ``widgets``.
"""

from wtal_kit.errors import InputError, WtalError

__version__ = "0.1.0"
__all__ = ["InputError", "WtalError", "__version__"]
