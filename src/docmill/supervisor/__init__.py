"""Process supervision on one host: ``docmill supervise`` (see DESIGN.md section 3).

Imports only ``docmill.queue``. The pieces, one concept each:

    config     pools from docmill.toml and the environment, with provenance
    states     the process state machine (STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL)
    process    one supervised process: exits, backoff, FATAL; the spawn/kill/clock seam
    pool       identical processes held at a target count; rolling restarts
    autoscale  balance = "auto": processes from the queues' wait time
    control    the cluster-wide "workers stopped" flag
    master     the main loop and its signals
    children   the real spawner, with output piped to the pool's log
    logs       size-rotated log files written only by the master
    status     what ``docmill queue status`` shows, from heartbeats
"""

from docmill.supervisor.autoscale import AutoScaler, QueueLoad, ScaleDecision
from docmill.supervisor.config import PoolConfig, SupervisorConfig, load_config
from docmill.supervisor.control import BackendControlStore, ControlStore
from docmill.supervisor.errors import SupervisorConfigError, SupervisorError
from docmill.supervisor.master import Master
from docmill.supervisor.pool import Pool
from docmill.supervisor.process import Process, RestartPolicy
from docmill.supervisor.states import IllegalTransition, MasterState, PoolState, ProcessState, transition

__all__ = [
    "AutoScaler",
    "BackendControlStore",
    "ControlStore",
    "IllegalTransition",
    "Master",
    "MasterState",
    "Pool",
    "PoolConfig",
    "PoolState",
    "Process",
    "ProcessState",
    "QueueLoad",
    "RestartPolicy",
    "ScaleDecision",
    "SupervisorConfig",
    "SupervisorConfigError",
    "SupervisorError",
    "load_config",
    "transition",
]
