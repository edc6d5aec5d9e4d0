"""``switchyard report``: the operator summary, in the terminal and as one HTML file.

``build`` reads the numbers (``sinks.report_source``) and computes the burn-downs
(``processors.report_math``); ``tables`` formats them once; ``terminal`` prints
them, ``plots`` draws them (matplotlib, SVG) and ``html`` puts both in one
self-contained page.
"""
