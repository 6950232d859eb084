//! A one-node Slurm cluster for the tests (Debian's slurm-wlm: slurmctld and slurmd on this
//! host with a config and ports of their own, munge for authentication), ended with the test.
//! Needs root and `apt-get install slurm-wlm munge`; a test without them panics saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn has(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn munge_answers() -> bool {
    Command::new("munge")
        .arg("-n")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// slurmctld + slurmd (and munged, unless one runs already) in the foreground with a config of
/// their own, ended with the test.
pub struct Cluster {
    daemons: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// The slurm.conf the client commands read (SLURM_CONF is set to it in this process).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    pub fn start() -> Self {
        let how = "this test needs Slurm and munge, run as root: `apt-get install slurm-wlm munge`";
        for c in ["/usr/sbin/slurmctld", "/usr/sbin/slurmd"] {
            assert!(Path::new(c).exists(), "{c} is missing; {how}");
        }
        assert!(has("sbatch", "--version") && has("munge", "--version"), "{how}");
        // SAFETY: geteuid only reads the caller's id.
        assert_eq!(unsafe { libc::geteuid() }, 0, "{how}");
        let dir = tempfile::Builder::new().prefix("slurm").tempdir_in("/tmp").unwrap();
        // Built first, so that a panic while starting still ends what was started.
        let mut cluster = Self {
            daemons: Vec::new(),
            dir,
        };
        if !munge_answers() {
            // In the foreground and owned by the test: a daemonized munged would outlive it,
            // holding every file descriptor the test inherited (a cargo lock among them).
            std::fs::create_dir_all("/run/munge").unwrap();
            let _ = Command::new("chown").args(["munge:munge", "/run/munge"]).status();
            let id = |flag: &str| -> u32 {
                let out = Command::new("id").args([flag, "munge"]).output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                text.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("no munge user (id {flag} munge: {text:?}); {how}"))
            };
            use std::os::unix::process::CommandExt;
            let munged = Command::new("/usr/sbin/munged")
                .arg("-F")
                .uid(id("-u"))
                .gid(id("-g"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("could not start /usr/sbin/munged: {e}; {how}"));
            cluster.daemons.push(munged);
            let up = (0..40).any(|_| {
                std::thread::sleep(Duration::from_millis(250));
                munge_answers()
            });
            assert!(up, "munged did not answer within 10 s (munge -n); {how}");
        }
        let d = cluster.dir.path().to_path_buf();
        for sub in ["state", "spool"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        let conf = format!(
            "ClusterName=s1test\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\n\
             CredType=cred/munge\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\nSlurmctldLogFile={d}/slurmctld.log\n\
             SlurmdLogFile={d}/slurmd.log\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\nReturnToService=2\nMpiDefault=none\nSlurmctldPort={}\nSlurmdPort={}\n\
             NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN\n\
             PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            super::free_port(),
            super::free_port(),
            d = d.display()
        );
        let conf_path = d.join("slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // The client commands (sbatch, squeue, scancel) read the same config.
        std::env::set_var("SLURM_CONF", &conf_path);
        let daemon = |bin: &str| {
            use std::os::unix::process::CommandExt;
            Command::new(bin)
                .args(["-D", "-f"])
                .arg(&conf_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        };
        cluster.daemons.push(daemon("/usr/sbin/slurmctld"));
        cluster.daemons.push(daemon("/usr/sbin/slurmd"));
        for _ in 0..120 {
            let out = Command::new("sinfo").args(["-h", "-o", "%t"]).output().unwrap();
            if String::from_utf8_lossy(&out.stdout).trim() == "idle" {
                return cluster;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "the Slurm node did not come up idle within a minute; see {}/slurmctld.log and slurmd.log",
            d.display()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A test that failed may leave a job running: its slurmstepd would outlive slurmd.
        let conf = self.conf();
        let _ = Command::new("scancel")
            .args(["--partition", "debug"])
            .env("SLURM_CONF", &conf)
            .stderr(Stdio::null())
            .status();
        for _ in 0..40 {
            let out = Command::new("squeue").arg("-h").env("SLURM_CONF", &conf).output();
            if out.map_or(true, |o| !o.status.success() || o.stdout.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        for c in self.daemons.iter_mut().rev() {
            // SAFETY: signals to the daemon's own process group.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// $S1_PYTHON (else python3), checked to have what the exported train.py imports.
pub fn trl_python() -> String {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    assert!(
        Command::new(&py)
            .args(["-c", "import torch, trl, transformers, accelerate, datasets"])
            .status()
            .is_ok_and(|s| s.success()),
        "this test needs a Python with torch, transformers==4.46.1, trl==0.12.0, accelerate and datasets (S1_PYTHON={py})"
    );
    py
}
