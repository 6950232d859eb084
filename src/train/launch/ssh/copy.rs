//! Folders and files between this machine and an [`Ssh`] host: rsync over the same ssh when
//! both ends have it (only what changed travels), else tar piped through ssh (nothing but tar
//! needed); a growing log brought back by its new bytes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{quote, remote_path, spawn_error, Ssh, SshError};

/// How folders travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copier {
    /// rsync over ssh (both ends have it): only what changed.
    Rsync,
    /// tar piped through ssh: needs nothing but tar on both ends.
    Tar,
}

impl Ssh {
    /// rsync when both ends have it, else tar (asked once).
    fn copier(&self) -> Result<Copier, SshError> {
        if let Some(c) = self.copier.get() {
            return Ok(*c);
        }
        let here = Command::new("rsync")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let there = here
            && self
                .exec(
                    "command -v rsync >/dev/null && echo yes || echo no",
                    "looking for rsync",
                )?
                .ends_with("yes");
        let c = if there { Copier::Rsync } else { Copier::Tar };
        let _ = self.copier.set(c);
        Ok(c)
    }

    fn rsync(&self, args: &[String], what: &str) -> Result<(), SshError> {
        let out = Command::new("rsync")
            .args(["-a", "-s", "-e"])
            .arg(self.ssh_command_line())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| spawn_error("rsync", e))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        // rsync exits 255 (or 12, 23 after a broken stream) when its ssh failed.
        if err.contains("ssh:") || out.status.code() == Some(255) || out.status.code() == Some(12) {
            return Err(self.explain(what, &err));
        }
        Err(SshError {
            connection: false,
            message: format!(
                "{what}: rsync with {} failed ({}): {}",
                self.host,
                out.status,
                err.trim()
            ),
        })
    }

    /// Pipes local `producer`'s stdout into `consumer`'s stdin (one side is ssh); both must
    /// succeed.
    fn pipe(&self, mut producer: Command, mut consumer: Command, what: &str) -> Result<(), SshError> {
        let name = |c: &Command| c.get_program().to_string_lossy().into_owned();
        let (pn, cn) = (name(&producer), name(&consumer));
        let mut p = producer
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&pn, e))?;
        let Some(stdout) = p.stdout.take() else {
            let _ = p.kill();
            return Err(spawn_error(&pn, std::io::Error::other("no stdout")));
        };
        let c = consumer
            .stdin(Stdio::from(stdout))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                let _ = p.kill();
                let _ = p.wait();
                return Err(spawn_error(&cn, e));
            }
        };
        let c_out = c.wait_with_output().map_err(|e| spawn_error(&cn, e))?;
        let p_out = p.wait_with_output().map_err(|e| spawn_error(&pn, e))?;
        for (prog, out) in [(&pn, &p_out), (&cn, &c_out)] {
            if prog == "ssh" {
                self.check(
                    what,
                    Output {
                        status: out.status,
                        stdout: Vec::new(),
                        stderr: out.stderr.clone(),
                    },
                )?;
            }
            if !out.status.success() {
                return Err(SshError {
                    connection: false,
                    message: format!(
                        "{what}: {prog} failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Copies the contents of `local` into `remote_dir` there (made when missing).
    pub fn push_dir(&self, local: &Path, remote_dir: &str) -> Result<(), SshError> {
        let what = format!("copying {} to {}:{remote_dir}", local.display(), self.host);
        let dir = remote_path(remote_dir);
        self.exec(&format!("mkdir -p {}", quote(&dir)), &what)?;
        match self.copier()? {
            Copier::Rsync => self.rsync(
                &[
                    format!("{}/", local.display()),
                    format!("{}:{dir}/", self.host.destination()),
                ],
                &what,
            ),
            Copier::Tar => {
                let mut tar = Command::new("tar");
                tar.arg("-C").arg(local).args(["-cf", "-", "."]);
                let ssh = self.command(&format!("tar -C {} -xf -", quote(&dir)));
                self.pipe(tar, ssh, &what)
            }
        }
    }

    /// Brings the folders named `prefix*` in `remote_dir` there into `local` (what is already
    /// here and unchanged is not sent again with rsync).
    pub fn pull_dirs(&self, remote_dir: &str, prefix: &str, local: &Path) -> Result<(), SshError> {
        let what = format!("bringing {remote_dir}/{prefix}* back from {}", self.host);
        let dir = remote_path(remote_dir);
        std::fs::create_dir_all(local).map_err(|e| SshError {
            connection: false,
            message: format!("{}: {e}", local.display()),
        })?;
        match self.copier()? {
            Copier::Rsync => self.rsync(
                &[
                    format!("--include={prefix}*/***"),
                    "--exclude=*".into(),
                    format!("{}:{dir}/", self.host.destination()),
                    format!("{}/", local.display()),
                ],
                &what,
            ),
            Copier::Tar => {
                let ssh = self.command(&format!(
                    "cd {} && {{ ls -d {}* 2>/dev/null || true; }} | tar -cf - -T -",
                    quote(&dir),
                    quote(prefix)
                ));
                let mut tar = Command::new("tar");
                tar.arg("-C").arg(local).args(["-xf", "-"]);
                self.pipe(ssh, tar, &what)
            }
        }
    }

    /// Appends to `local` what `remote_file` there holds past `local`'s length (a remote file
    /// shorter than that, as a restarted job truncates its log, is fetched whole again). The
    /// bytes added; none while the remote file does not exist.
    pub fn pull_tail(&self, remote_file: &str, local: &Path) -> Result<u64, SshError> {
        let have = std::fs::metadata(local).map(|m| m.len()).unwrap_or(0);
        let f = quote(&remote_path(remote_file));
        let out = self.output(
            &format!("[ -f {f} ] || exit 0; wc -c < {f}; tail -c +{} {f}", have + 1),
            &format!("reading {remote_file} on {}", self.host),
        )?;
        let local_err = |e: std::io::Error| SshError {
            connection: false,
            message: format!("{}: {e}", local.display()),
        };
        let bytes = out.stdout;
        let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
            return Ok(0);
        };
        let size: u64 = String::from_utf8_lossy(&bytes[..nl]).trim().parse().unwrap_or(0);
        if size < have {
            std::fs::write(local, b"").map_err(local_err)?;
            return self.pull_tail(remote_file, local);
        }
        let body = &bytes[nl + 1..];
        if body.is_empty() {
            return Ok(0);
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(local)
            .map_err(local_err)?;
        file.write_all(body).map_err(local_err)?;
        Ok(body.len() as u64)
    }
}
