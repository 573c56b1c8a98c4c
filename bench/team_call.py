"""The cost of one team call: a 2-thread call of a kernel that only meets at a barrier, right
after the previous call and after 1 ms and 20 ms of idle (medians of 30), with a 1-thread call
for scale.

    python bench/team_call.py
"""
import statistics
import time

import numpy as np

from fastmlp import team
from fastmlp.kernels._config import jit
from fastmlp.kernels.sync import SYNC_SIZE, barrier


@jit(entry=True)
def meet(slot, size, sync):
    barrier(sync, 0, size)


for size in (1, 2):
    team.run(meet, size, np.zeros(SYNC_SIZE, np.int64))  # compile, start the workers
    for gap in (0, 1e-3, 20e-3):
        times = []
        for _ in range(30):
            sync = np.zeros(SYNC_SIZE, np.int64)
            if gap:
                time.sleep(gap)
            start = time.perf_counter()
            team.run(meet, size, sync)
            times.append(time.perf_counter() - start)
        print(f"{size} thread(s), {gap * 1e3:4.0f} ms idle before: "
              f"median {statistics.median(times) * 1e6:7.1f} us")
