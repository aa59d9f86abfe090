"""Charts of an outcome's cycles: XmR charts of the result and its drivers, the RADAR score.

`build_report` turns stored cycles into chart data; `vega` draws it with Vega-Lite (offline
HTML, PNG) for `radar report`; `svg` draws the same marks as a static SVG for the flow's artifact.
"""

from cycles.report.data import Report, build_report

__all__ = ["Report", "build_report"]
