"""The lifecycle's phase and profiling sub-phase names, Dynamo's v1beta1 enums.

One list for the machine (`dgdr.domain.machine` builds its states from it), the profiler (`sim`) and the
Kubernetes adapter. No imports, so reading the names costs nothing at start-up.
"""

PHASES = ("Pending", "Profiling", "Ready", "Deploying", "Deployed", "Failed")
PROFILING_PHASES = (
    "Initializing",
    "SweepingPrefill",
    "SweepingDecode",
    "SelectingConfig",
    "BuildingCurves",
    "GeneratingDGD",
    "Done",
)
SUB_PHASES = PROFILING_PHASES[:-1]  # every profiling sub-phase but Done, where nothing can fail
