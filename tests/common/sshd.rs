//! An OpenSSH server of the test's own (a free port of 127.0.0.1, its own host key, config and
//! authorized key), ended with the test; the client reaches it as host `s1-login` through the
//! ssh config file in [`Sshd::options`], passed as a user's `S1_SSH_OPTIONS` would be. Needs
//! root and `apt-get install openssh-server rsync`; a test without them panics saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use s1_studio::train::launch::ssh;

const HOW: &str = "this test needs an OpenSSH server and client and rsync, run as root: \
                   `apt-get install -y --no-install-recommends openssh-server rsync`";

/// An sshd of the test's own, ended with it; the client reaches it as host `s1-login` through
/// the ssh config file in [`Sshd::options`].
pub struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
}

fn keygen(path: &Path) -> String {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}; {HOW}"));
    assert!(ok.success(), "ssh-keygen failed; {HOW}");
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

impl Sshd {
    /// Starts sshd; its sessions get `env` (SetEnv), as a login node's profile would set them.
    pub fn start(env: &[(&str, String)]) -> Self {
        for bin in [
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/ssh-keygen",
            "/usr/bin/rsync",
        ] {
            assert!(Path::new(bin).exists(), "{bin} is missing; {HOW}");
        }
        // SAFETY: geteuid only reads the caller's id.
        assert_eq!(unsafe { libc::geteuid() }, 0, "{HOW}");
        let dir = tempfile::Builder::new().prefix("sshd").tempdir_in("/tmp").unwrap();
        let d = dir.path().to_path_buf();
        let host_pub = keygen(&d.join("host_key"));
        std::fs::write(d.join("authorized_keys"), keygen(&d.join("client_key"))).unwrap();
        keygen(&d.join("stranger_key"));
        let port = super::free_port();
        let mut conf = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n",
            d = d.display()
        );
        // One SetEnv line: sshd keeps the first.
        if !env.is_empty() {
            let vars: Vec<String> = env.iter().map(|(k, v)| format!("\"{k}={v}\"")).collect();
            conf.push_str(&format!("SetEnv {}\n", vars.join(" ")));
        }
        std::fs::write(d.join("sshd_config"), conf).unwrap();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
        for (name, key) in [("ssh_config", "client_key"), ("ssh_config_stranger", "stranger_key")] {
            std::fs::write(
                d.join(name),
                format!(
                    "Host s1-login\n  HostName 127.0.0.1\n  Port {port}\n  User root\nHost *\n  IdentityFile {d}/{key}\n  \
                     IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n",
                    d = d.display()
                ),
            )
            .unwrap();
        }
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start /usr/sbin/sshd: {e}; {HOW}"));
        let sshd = Self { child, dir };
        let up = (0..40).any(|_| {
            std::thread::sleep(Duration::from_millis(250));
            Command::new("ssh")
                .args(sshd.options())
                .args(["-o", "BatchMode=yes", "s1-login", "true"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            up,
            "sshd did not take the test's key within 10 s; its log:\n{}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
        );
        sshd
    }

    pub fn config(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The studio's ssh options, written as in S1_SSH_OPTIONS.
    pub fn options(&self) -> Vec<String> {
        ssh::parse_options(&format!("-F {}", self.config("ssh_config").display())).unwrap()
    }
}

impl Sshd {
    /// Ends the daemon (its files stay until it is dropped).
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signals to sshd's own process group (its sessions have their own).
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
