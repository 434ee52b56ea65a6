"""Run under `mpiexec -n N`: rank 1 raises while the others wait in an all_reduce.

Without smolgrad.distributed's abort-on-exception hook this job would hang forever; with
it the job must end promptly with a non-zero exit status.
"""

import smolgrad as sg
import smolgrad.distributed as dist

dist.init_process_group("mpi")
if dist.get_rank() == 1:
    raise ValueError("deliberate failure on rank 1")
t = sg.ones(3)
dist.all_reduce(t)  # never completes: rank 1 is gone
print("unreachable: the all_reduce returned", flush=True)
