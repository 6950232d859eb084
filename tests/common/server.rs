//! `s1-studio serve` as a child process on a free loopback port, and the real `openai` Python
//! client driving it (tests/fixtures/serve/client.py).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; killed when dropped. Its stderr (the request log) is kept in a file.
pub struct Server {
    child: Child,
    pub base: String,
    pub key: String,
    log: tempfile::NamedTempFile,
}

impl Server {
    /// Starts `s1-studio serve --model MODEL --port 0 EXTRA…` and waits for `/health`.
    pub fn start(model: &Path, extra: &[&str]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_s1-studio"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--port", "0"])
            .args(extra)
            .env_remove("S1_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("serve-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let first = lines.next().and_then(Result::ok);
                let _ = tx.send(first);
                for _ in lines {}
            })
            .unwrap();
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Some(l)) => l,
            other => {
                let _ = child.kill();
                panic!(
                    "the server did not start ({other:?}); its stderr:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                )
            }
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let key = extra
            .iter()
            .position(|a| *a == "--api-key")
            .map_or("none".to_string(), |i| extra[i + 1].to_string());
        let server = Self {
            child,
            base: format!("http://{addr}"),
            key,
            log,
        };
        let t0 = Instant::now();
        while server.get("/health").0 != 200 {
            assert!(t0.elapsed() < Duration::from_secs(60), "/health never answered 200");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// What the server wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into()
    }

    /// GET -> (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        match Self::agent().get(format!("{}{path}", self.base)).call() {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// POST a raw body (with the key) -> (status, body).
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        let mut r = Self::agent()
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.key))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    /// Runs client.py's `cmd` with `args` and returns its JSON result.
    pub fn client(&self, cmd: &str, args: serde_json::Value) -> serde_json::Value {
        let script = super::fixture("serve/client.py");
        let out = Command::new(python_with_openai())
            .arg(&script)
            .args([&self.base, &self.key, cmd, &args.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "client.py {cmd} failed:\n{}\n{}\nserver log:\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("client.py {cmd}: {e}: {stdout}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python with the `openai` package: S1_PYTHON, else python3. Panics saying how to get one.
pub fn python_with_openai() -> String {
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs a Python with the `openai` package (S1_PYTHON={py}): `pip install openai`, \
         or run scripts/test.sh, which makes one"
    );
    py
}
