"""The GPU campaign: one prepared command that uses a short GPU window fully.

    build     (here, no GPU)  compile everything for sm_90 into one directory (<= 60 MiB)
    run       (GPU machine)   campaign_runner.py: facts, numerics, copy bandwidth, timings,
                              candidates, torch eager / torch.compile, within its own deadline
    ingest    (here)          records, retrained cost model, README table and plots
    rehearse  (here)          build + run with the CPU standing in, plus the real run's estimate

``runner`` is the only part that runs on the GPU machine (with ``cost_model/bundle_runner.py``,
``benchmark/torch_fns.py`` and the runtime-only TVM of ``runtime_pack``); it never imports this
package.
"""
