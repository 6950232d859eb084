//! A minimal OpenAI-compatible `/chat/completions` and `/completions` server for tests: each
//! request's messages (a system prompt and the user's, joined by a blank line) or its `prompt` go to a handler that returns the reply's
//! content (or an HTTP error status), after an optional delay. Keep-alive connections are served; every prompt it received is logged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Handler = dyn Fn(&str) -> Result<String, u16> + Send + Sync;

pub struct MockEndpoint {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl MockEndpoint {
    pub fn start(delay: Duration, handler: Arc<Handler>) -> MockEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::Builder::new()
            .name("mock-endpoint".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (handler, log) = (handler.clone(), log2.clone());
                    std::thread::Builder::new()
                        .name("mock-endpoint-conn".into())
                        .spawn(move || serve(stream, delay, &*handler, &log))
                        .unwrap();
                }
            })
            .unwrap();
        MockEndpoint { url, log }
    }

    pub fn prompts(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, delay: Duration, handler: &Handler, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        // Every message's content (a system prompt, then the user's), joined by a blank line.
        let prompt = req
            .get("messages")
            .and_then(|m| m.as_array())
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m.get("content").and_then(|c| c.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .or_else(|| req.get("prompt").and_then(|p| p.as_str()).map(str::to_string))
            .unwrap_or_default();
        std::thread::sleep(delay);
        let (status, text) = match handler(&prompt) {
            Ok(content) => {
                log.lock().unwrap().push(prompt);
                // A `/completions` request with `max_tokens` N "runs out" when the reply has N
                // words or more (a word standing for a token).
                let length = req
                    .get("max_tokens")
                    .and_then(|n| n.as_u64())
                    .is_some_and(|n| content.split_whitespace().count() as u64 >= n);
                let finish = if length { "length" } else { "stop" };
                let reply = serde_json::json!({"choices": [{
                    "message": {"role": "assistant", "content": content},
                    "text": content,
                    "finish_reason": finish,
                }]});
                (200, reply.to_string())
            }
            Err(code) => (code, "{\"error\": \"mock\"}".to_string()),
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
