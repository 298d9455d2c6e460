"""The search service: settings, studies, the pack planner, the Tune searcher and trainable,
and the launcher. Each is imported from its module (``search.settings``, ``search.space``,
``search.sampler``, ``search.studies``, …).

This package imports nothing itself: a search worker imports ``search.trainable`` (Ray, torch,
the training loop), and must not pay for the settings' and the launcher's imports (the storage,
SQLAlchemy, Optuna) that it never uses; a refused launch must not pay for torch or Ray.
"""
