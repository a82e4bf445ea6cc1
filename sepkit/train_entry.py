"""``python sepkit/train_entry.py [overrides]`` = ``sepkit train [overrides]``.

The script Lightning starts again for each further rank of a DDP run (``trainer=ddp``, ``ddp_cpu``):
it re-runs ``sys.argv[0]`` with the same arguments, and the ``sepkit`` command's own argv[0] names no
script that takes them. :func:`sepkit.commands.main` points argv[0] here for ``sepkit train``.
"""

import sys

if __name__ == "__main__":
    del sys.path[0]  # this folder: its modules (data, config, ...) must not shadow top-level ones
    from sepkit.commands import main

    main(["train", *sys.argv[1:]])
