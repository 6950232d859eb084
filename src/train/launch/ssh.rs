//! The transport to a machine that shares no folder with this one: `ssh` that never prompts
//! (BatchMode, a connect timeout, the user's ~/.ssh/config and the options in `S1_SSH_OPTIONS`),
//! a folder copied there and files brought back (rsync when both ends have it, else tar through
//! the same ssh), and remote commands whose failures name the host and what failed. The Slurm
//! path over SSH ([`super::slurm::Site`]) is built on it; nothing here knows about Slurm.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

mod copy;
pub use copy::Copier;

/// Extra ssh options, split as a shell would (`-F ~/cluster/ssh_config -i ~/.ssh/id_hpc`).
pub const OPTIONS_ENV: &str = "S1_SSH_OPTIONS";

/// Seconds ssh waits for a connection before it gives up.
pub const CONNECT_TIMEOUT_S: u32 = 15;

/// A login as `[user@]host[:port]` (an IPv6 address in brackets: `[::1]:2222`). The host may be
/// an alias of the user's ssh config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SshHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshHost {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = |why: &str| format!("ssh host `{text}`: {why} (expected [user@]host[:port])");
        let (user, rest) = match t.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad("the user before @ is empty")),
            None => (None, t),
        };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(bad("text after ]")),
            }
        } else if rest.matches(':').count() == 1 {
            let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
            (h, Some(p))
        } else {
            (rest, None)
        };
        if host.is_empty() || host.starts_with('-') || host.chars().any(|c| c.is_whitespace()) {
            return Err(bad("no host name"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(&format!("port `{p}` is not a number from 1 to 65535")))?,
            ),
            None => None,
        };
        Ok(Self {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// `user@host` as ssh and rsync take it (the port goes in `-p`).
    pub fn destination(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.user {
            Some(u) => format!("{u}@{host}"),
            None => host,
        }
    }
}

impl std::fmt::Display for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.destination()),
            None => write!(f, "{}", self.destination()),
        }
    }
}

/// What went wrong with a remote step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshError {
    /// The connection failed or broke (the remote side may be fine: try again later).
    pub connection: bool,
    pub message: String,
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SshError> for String {
    fn from(e: SshError) -> Self {
        e.message
    }
}

/// One remote machine and how to reach it.
#[derive(Debug)]
pub struct Ssh {
    pub host: SshHost,
    options: Vec<String>,
    copier: OnceLock<Copier>,
}

impl Clone for Ssh {
    fn clone(&self) -> Self {
        let copier = OnceLock::new();
        if let Some(c) = self.copier.get() {
            let _ = copier.set(*c);
        }
        Self {
            host: self.host.clone(),
            options: self.options.clone(),
            copier,
        }
    }
}

/// The options in [`OPTIONS_ENV`], split as a shell would.
pub fn options_from_env() -> Result<Vec<String>, String> {
    match std::env::var(OPTIONS_ENV) {
        Ok(v) => parse_options(&v).map_err(|e| format!("{OPTIONS_ENV}: {e}")),
        Err(_) => Ok(Vec::new()),
    }
}

/// ssh options written as on a command line (`-F cfg -o Port=2222`).
pub fn parse_options(text: &str) -> Result<Vec<String>, String> {
    shlex::split(text).ok_or_else(|| format!("`{text}` has an unclosed quote"))
}

/// `s` quoted for the remote POSIX shell.
pub fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", s.replace('\0', "").replace('\'', r"'\''")))
}

/// A remote path for the shell: `~/x` and relative paths are under the login's home (ssh starts
/// there), written without the `~` so that quoting keeps them whole.
pub fn remote_path(dir: &str) -> String {
    let d = dir.trim();
    let rel = if d == "~" {
        "."
    } else {
        d.strip_prefix("~/").unwrap_or(d)
    };
    rel.trim_end_matches('/').to_string()
}

/// The folder a run goes to when none is named: `~/s1-studio-runs/<the local folder's name>`.
pub fn default_remote_dir(out: &Path) -> String {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    format!("~/s1-studio-runs/{name}")
}

fn spawn_error(program: &str, e: std::io::Error) -> SshError {
    SshError {
        connection: false,
        message: if e.kind() == std::io::ErrorKind::NotFound {
            match program {
                "ssh" => {
                    "ssh is not on PATH: install an OpenSSH client (Debian: apt-get install openssh-client)".into()
                }
                p => format!("{p} is not on PATH"),
            }
        } else {
            format!("could not run {program}: {e}")
        },
    }
}

impl Ssh {
    pub fn new(host: SshHost, options: Vec<String>) -> Self {
        Self {
            host,
            options,
            copier: OnceLock::new(),
        }
    }

    /// `host` (`[user@]host[:port]`) with the options of [`OPTIONS_ENV`].
    pub fn from_env(host: &str) -> Result<Self, String> {
        Ok(Self::new(SshHost::parse(host)?, options_from_env()?))
    }

    /// Copies folders with `c` instead of finding out (rsync when both ends have it, else tar).
    pub fn with_copier(self, c: Copier) -> Self {
        let _ = self.copier.set(c);
        self
    }

    /// ssh's arguments before the destination: never a prompt, a bounded wait for the
    /// connection, a broken one noticed within a minute, then the user's own options (later
    /// ones cannot override these: ssh keeps the first value of an option).
    fn ssh_args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(p) = self.host.port {
            a.extend(["-p".to_string(), p.to_string()]);
        }
        a.extend(self.options.iter().cloned());
        a
    }

    /// The ssh command line (for rsync's `-e` and messages).
    pub fn ssh_command_line(&self) -> String {
        let mut words = vec!["ssh".to_string()];
        words.extend(self.ssh_args());
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
    }

    fn command(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.ssh_args()).arg(self.host.destination()).arg(remote);
        c
    }

    /// What an ssh failure (exit 255) means, from its stderr.
    fn explain(&self, what: &str, stderr: &str) -> SshError {
        let h = &self.host;
        let said = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
            .collect::<Vec<_>>()
            .join("; ");
        let has = |s: &str| stderr.to_ascii_lowercase().contains(&s.to_ascii_lowercase());
        let (connection, message) = if has("Could not resolve hostname") {
            (true, format!("cannot reach {h}: its name does not resolve ({said})"))
        } else if has("Connection refused") {
            (
                true,
                format!(
                    "cannot reach {h}: connection refused (is sshd listening on port {}?)",
                    h.port.unwrap_or(22)
                ),
            )
        } else if has("timed out") || has("No route to host") || has("Network is unreachable") {
            (true, format!("cannot reach {h}: {said}"))
        } else if has("Permission denied") || has("Too many authentication failures") {
            (
                false,
                format!(
                    "{h} refused the login ({said}): it must take a key without a prompt (ssh-add, or IdentityFile in \
                     ~/.ssh/config or {OPTIONS_ENV})"
                ),
            )
        } else if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            (
                false,
                format!("{h}'s host key is unknown or changed ({said}): connect once with `ssh {h}` and check it"),
            )
        } else if has("closed by")
            || has("reset by")
            || has("Broken pipe")
            || has("Connection closed")
            || has("timeout")
        {
            (true, format!("lost the connection to {h}: {said}"))
        } else {
            (false, format!("ssh to {h} failed: {said}"))
        };
        SshError {
            connection,
            message: format!("{what}: {message}"),
        }
    }

    fn check(&self, what: &str, out: Output) -> Result<Output, SshError> {
        if out.status.code() == Some(255) {
            return Err(self.explain(what, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out)
    }

    /// Runs `remote` (a POSIX shell command line) there: its output whatever its exit status;
    /// an error only when ssh itself failed.
    pub fn output(&self, remote: &str, what: &str) -> Result<Output, SshError> {
        let out = self
            .command(remote)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| spawn_error("ssh", e))?;
        self.check(what, out)
    }

    /// Runs `remote` there; its stdout, or an error naming the host, `what` and the reason.
    pub fn exec(&self, remote: &str, what: &str) -> Result<String, SshError> {
        let out = self.output(remote, what)?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let message = match out.status.code() {
                Some(127) => format!("{what} on {}: command not found ({err})", self.host),
                _ => format!("{what} on {} failed ({}): {err}", self.host, out.status),
            };
            return Err(SshError {
                connection: false,
                message,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_with_user_and_port() {
        let h = SshHost::parse("alice@login.hpc.edu:2222").unwrap();
        assert_eq!(
            (h.user.as_deref(), h.host.as_str(), h.port),
            (Some("alice"), "login.hpc.edu", Some(2222))
        );
        assert_eq!(h.destination(), "alice@login.hpc.edu");
        assert_eq!(h.to_string(), "alice@login.hpc.edu:2222");
        let h = SshHost::parse("cluster").unwrap();
        assert_eq!(
            (h.user.clone(), h.port, h.to_string()),
            (None, None, "cluster".to_string())
        );
        let h = SshHost::parse("[::1]:22").unwrap();
        assert_eq!(
            (h.host.as_str(), h.port, h.destination()),
            ("::1", Some(22), "[::1]".into())
        );
        for bad in ["", "@h", "h:0", "h:x", "-oProxyCommand=x", "a b"] {
            assert!(SshHost::parse(bad).is_err(), "{bad}");
        }
        assert!(SshHost::parse("h:70000").unwrap_err().contains("port `70000`"));
    }

    #[test]
    fn options_and_paths_are_quoted_for_the_shell() {
        assert_eq!(
            parse_options("-F '/a b/cfg' -o Port=2").unwrap(),
            vec!["-F", "/a b/cfg", "-o", "Port=2"]
        );
        assert!(parse_options("-F 'x").is_err());
        for s in ["a b'c", "plain", "$HOME;rm"] {
            assert_eq!(shlex::split(&quote(s)).unwrap(), vec![s.to_string()]);
        }
        assert_eq!(remote_path("~/s1-studio-runs/a/"), "s1-studio-runs/a");
        assert_eq!(remote_path("/scratch/a"), "/scratch/a");
        assert_eq!(remote_path("~"), ".");
        assert_eq!(default_remote_dir(Path::new("/x/runs/r1")), "~/s1-studio-runs/r1");
        let ssh = Ssh::new(SshHost::parse("h:2").unwrap(), vec!["-F".into(), "/a b".into()]);
        let line = ssh.ssh_command_line();
        assert!(line.starts_with("ssh -o 'BatchMode=yes' -o 'ConnectTimeout="), "{line}");
        assert!(line.ends_with("-p 2 -F '/a b'"), "{line}");
    }

    #[test]
    fn ssh_failures_are_said_plainly() {
        let ssh = Ssh::new(SshHost::parse("me@h:2200").unwrap(), Vec::new());
        let e = ssh.explain("submitting", "ssh: connect to host h port 2200: Connection refused\r\n");
        assert!(e.connection);
        assert_eq!(
            e.message,
            "submitting: cannot reach me@h:2200: connection refused (is sshd listening on port 2200?)"
        );
        let e = ssh.explain("x", "me@h: Permission denied (publickey).");
        assert!(
            !e.connection && e.message.contains("me@h:2200 refused the login"),
            "{e}"
        );
        let e = ssh.explain("x", "Connection to h closed by remote host.");
        assert!(
            e.connection && e.message.contains("lost the connection to me@h:2200"),
            "{e}"
        );
    }
}
