"""The Ray job entrypoint for this run folder (s1-studio): reserves {{ gpus_per_node }} GPU(s) (or a
CPU when DEVICE=cpu) on one node of the cluster and runs launch.sh (torchrun) there, so the job's
log carries the training's. Submitted through the Jobs API (ray_submit.json holds the request) or
`ray job submit --working-dir . -- python ray_job.py`.
"""

import os
import subprocess
import sys

import ray


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ray.init()
    device = os.environ.get("DEVICE", "cuda")
    nproc = int(os.environ.get("NPROC", "{{ gpus_per_node or 1 }}"))
    env = dict(os.environ, NPROC=str(nproc), DEVICE=device)
    env.setdefault("TORCHRUN", f"{sys.executable} -m torch.distributed.run")
    resources = {"num_gpus": nproc} if device == "cuda" else {"num_cpus": 1}

    @ray.remote(**resources)
    def run(folder, env):
        return subprocess.call(["bash", os.path.join(folder, "launch.sh")], cwd=folder, env=env)

    code = ray.get(run.remote(here, env))
    print(f"launch.sh exited with {code}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
