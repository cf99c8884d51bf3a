//! A minimal HTTP/1.1 client for the two calls the generator makes
//! (`/api/login`, `/api/chats`). Hand-written so the request goes out from
//! a chosen source address and the crate needs no HTTP client dependency;
//! `Connection: close` makes the server close first, so TIME_WAIT lands on
//! the server side, not on the generator's ports.

use crate::error::{LoadError, Result};
use crate::net::{self, Sources, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Status, headers (lowercase names) and body of a response.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| LoadError::Http(format!("response is not JSON: {e}")))
    }
}

/// POSTs a JSON body and reads the whole response.
pub async fn post_json(
    target: &Target,
    sources: &Sources,
    path: &str,
    body: &serde_json::Value,
) -> Result<Response> {
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        target.authority,
        body.len()
    );
    let mut stream = net::connect(target, sources).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::with_capacity(1024);
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| LoadError::Http("response without a header end".into()))?;
    let head = std::str::from_utf8(&raw[..split])
        .map_err(|_| LoadError::Http("response head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| LoadError::Http(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let bad = || LoadError::Http("bad chunked body".into());
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| bad())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse(
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nSet-Cookie: a=b; Path=/\r\n\r\n{}",
        )
        .expect("plain");
        assert_eq!(r.status, 201);
        assert_eq!(r.header("set-cookie"), Some("a=b; Path=/"));
        assert_eq!(r.body, b"{}");
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            .expect("chunked");
        assert_eq!(r.body, b"{}");
    }
}
