//! A tiny HTTP/1.1 file server on 127.0.0.1 for download tests: GET with
//! `Range: bytes=N-` (206, or 416 past the end), 404 for unknown paths,
//! `Connection: close`. It can ignore ranges (answer 200), cut a
//! response short once (to test resuming), announce a false
//! `Content-Length`, stream an endless body, and redirect. Every request
//! is logged.
//! Shared by the crate's tests and the end-to-end `tests/weights.rs`.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct State {
    /// URL path (`/dir/name.pth`) → content.
    pub files: HashMap<String, Vec<u8>>,
    /// (path, Range header) of every request, in order.
    pub log: Vec<(String, Option<String>)>,
    /// Answer every GET with the whole file (200), ranges ignored.
    pub ignore_range: bool,
    /// Path → bytes after which the next response to it is cut (once).
    pub cut_once: HashMap<String, usize>,
    /// Path → the `Content-Length` announced instead of the file's (its
    /// real bytes follow, then the connection closes).
    pub announce_length: HashMap<String, u64>,
    /// Paths answered with 200, no `Content-Length` and zeros until the
    /// client hangs up (or [`ENDLESS_SAFETY_NET`] bytes, so that a client
    /// that never stops cannot fill the test machine's disk).
    pub endless: HashSet<String>,
    /// Path → `Location` of a `302 Found`.
    pub redirects: HashMap<String, String>,
}

/// The most an "endless" body sends before the server gives up.
pub const ENDLESS_SAFETY_NET: usize = 64 << 20;

pub struct Server {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
}

impl Server {
    /// Starts serving `files` on a free port of 127.0.0.1 (in a thread
    /// that lives as long as the test process).
    pub fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State { files, ..Default::default() }));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &st);
                });
            }
        });
        Server { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().log.clone()
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let (body, ignore_range, cut, announce, endless, redirect) = {
        let mut s = state.lock().unwrap();
        s.log.push((path.clone(), range.clone()));
        let cut = s.cut_once.remove(&path);
        let announce = s.announce_length.get(&path).copied();
        (
            s.files.get(&path).cloned(),
            s.ignore_range,
            cut,
            announce,
            s.endless.contains(&path),
            s.redirects.get(&path).cloned(),
        )
    };
    let mut out = stream;
    if let Some(to) = redirect {
        return write!(out, "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    if endless {
        return endless_body(out);
    }
    let Some(body) = body else {
        let msg = b"not found";
        write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", msg.len())?;
        return out.write_all(msg);
    };
    let len = body.len();
    let start = range
        .filter(|_| !ignore_range)
        .and_then(|r| r.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse::<usize>().ok()));
    let part = match start {
        Some(s) if s >= len => {
            write!(out, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        Some(s) => {
            write!(
                out,
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                len - 1,
                len - s
            )?;
            &body[s..]
        }
        None => {
            let announced = announce.unwrap_or(len as u64);
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n")?;
            &body[..]
        }
    };
    match cut {
        Some(n) if n < part.len() => {
            out.write_all(&part[..n])?;
            out.flush()?;
            // Closing without the rest: the client sees the transfer stop.
            Ok(())
        }
        _ => out.write_all(part),
    }
}

/// 200 with no length and zeros until the client hangs up (or the safety net).
fn endless_body(mut out: TcpStream) -> std::io::Result<()> {
    write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
    let zeros = vec![0u8; 1 << 16];
    let mut sent = 0;
    while sent < ENDLESS_SAFETY_NET {
        out.write_all(&zeros)?;
        sent += zeros.len();
    }
    Ok(())
}

/// Every file under `dir`, recursively (what a fetch left in its cache).
#[allow(dead_code)]
pub fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
