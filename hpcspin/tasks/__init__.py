"""One module per deck task (``[run] task``), each with ``run(cfg, ctx, restart=None)``."""
