//! A minimal blocking HTTP/1.1 client for talking to a `lab serve` on loopback from a
//! notebook cell or a test: one request per connection, `Content-Length` or chunked
//! answers. Not a general client (no TLS, no redirects).
use crate::{Error, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// One answer: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    request(addr, "GET", path, "text/plain", &[])
}

/// `POST path` with `body` of `content_type`.
pub fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Result<Response> {
    request(addr, "POST", path, content_type, body)
}

/// One request on a fresh connection (closed after the answer).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Response> {
    let err = |what: &str, e: std::io::Error| {
        Error::io(Path::new(&format!("http://{addr}{path} ({what})")), e)
    };
    let mut stream = TcpStream::connect(addr).map_err(|e| err("connect", e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| err("timeout", e))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| err("send", e))?;
    // A server may answer (413) and close before reading all of a large body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(err("receive", e));
        }
    }
    parse(&raw).ok_or_else(|| {
        Error::data(
            Path::new(&format!("http://{addr}{path}")),
            "not an HTTP/1.1 answer",
        )
    })
}

fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let payload = &raw[end..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(payload)?
    } else {
        payload.to_vec()
    };
    Some(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line]).ok()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(line + 2..line + 2 + size)?);
        data = data.get(line + 4 + size..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_length_or_chunks_are_read_whole() {
        let plain =
            parse(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\nno").unwrap();
        assert_eq!((plain.status, plain.text().as_str()), (413, "no"));
        let chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(chunked.text(), "abcde");
        assert!(parse(b"garbage").is_none());
    }
}
