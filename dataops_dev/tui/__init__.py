"""The terminal UI (`dataops-dev tui`): a textual app over the saved review report.

Screens and widgets only; every action goes through the core via `tui.session.ReviewSession`.
"""
