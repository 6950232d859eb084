//! TLS behind a proxy that inspects it: a hub answering over HTTPS with a certificate from a CA
//! no public store holds (tests/fixtures/tls: `ca.pem`, and `server.pem`/`server.key` for
//! 127.0.0.1 signed by it, made with `openssl req -x509` and `openssl x509 -req`, valid for a
//! century). The client refuses it with a hint, and trusts it once SSL_CERT_FILE names the CA
//! (the platform verifier reads it on Linux). The server is Python's own `ssl` module
//! ($S1_PYTHON, else python3).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const SERVER: &str = r#"
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps([{"id": "org/behind-a-proxy-GGUF", "downloads": 42, "likes": 4,
                            "tags": ["gguf", "llama"]}]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The server process, killed when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Linux only: elsewhere the platform verifier asks the OS store, which SSL_CERT_FILE does not
/// change.
#[cfg(all(unix, not(target_vendor = "apple")))]
#[test]
fn a_proxy_ca_is_trusted_through_ssl_cert_file() {
    let tls = common::fixture("tls");
    let py = std::env::var("S1_PYTHON").unwrap_or_else(|_| "python3".into());
    let child = Command::new(&py)
        .arg("-c")
        .arg(SERVER)
        .arg(tls.join("server.pem"))
        .arg(tls.join("server.key"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs a Python 3 (S1_PYTHON={py}): {e}"));
    let mut server = Server(child);
    let mut port = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let endpoint = format!("https://127.0.0.1:{}", port.trim());
    let search = |cert_file: Option<&std::path::Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_s1-studio"));
        c.args(["models", "search", "proxy"])
            .env("HF_ENDPOINT", &endpoint)
            .env_remove("HF_TOKEN")
            .env_remove("SSL_CERT_DIR")
            .env_remove("SSL_CERT_FILE")
            .env("HF_HOME", tls.join("no-hf-home"));
        if let Some(f) = cert_file {
            c.env("SSL_CERT_FILE", f);
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = search(None);
    assert!(
        !ok && text.contains("UnknownIssuer") && text.contains("SSL_CERT_FILE"),
        "{text}"
    );
    let (ok, text) = search(Some(&tls.join("ca.pem")));
    assert!(
        ok && text.contains("org/behind-a-proxy-GGUF") && text.contains("yes (llama)"),
        "{text}"
    );
}
