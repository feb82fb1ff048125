"""The Horse-10 study: plans, runs, and the analyses, figures and report that read its table."""
