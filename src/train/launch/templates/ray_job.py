"""The Ray job entrypoint for this run folder (s1-studio): reserves {{ gpus_per_node }} GPU(s) (or a
CPU when DEVICE=cpu) on one node of the cluster and runs launch.sh (torchrun) there, so the job's
log carries the training's. Submitted through the Jobs API (ray_submit.json holds the request) or
`ray job submit --working-dir . -- python ray_job.py` (set S1_RAY_WORKING_DIR=1 then, and OUTPUT_DIR
to where the checkpoints should persist).
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

    # Uploaded as the job's working directory (S1_RAY_WORKING_DIR): each task runs in Ray's copy
    # on its own node; else the cluster sees this folder where it is.
    uploaded = bool(os.environ.get("S1_RAY_WORKING_DIR"))

    @ray.remote(**resources)
    def run(folder, env):
        folder = folder or os.getcwd()
        print(f"ray_job.py: running launch.sh in {folder}", flush=True)
        return subprocess.call(["bash", os.path.join(folder, "launch.sh")], cwd=folder, env=env)

    code = ray.get(run.remote(None if uploaded else here, env))
    print(f"launch.sh exited with {code}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
