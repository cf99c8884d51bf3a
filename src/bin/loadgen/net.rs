//! Where the generator connects from and to: the target must be loopback
//! (this tool never loads a remote machine), and client sockets are bound
//! round-robin to several 127.0.0.x source addresses because one source
//! address gives only ~28k ephemeral ports toward one server port.

use crate::error::{LoadError, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpSocket, TcpStream};

/// The server to load.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as given, for the `Host` header.
    pub authority: String,
}

impl Target {
    /// Parses `http://host:port` and refuses anything that is not loopback.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| LoadError::Config(format!("target must be http://host:port: {url}")))?;
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') {
            return Err(LoadError::Config("target must not have a path".into()));
        }
        let with_port = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| LoadError::Config(format!("cannot resolve {authority}: {e}")))?
            .collect();
        // Every address the name resolves to must be loopback, so that a
        // name that also resolves elsewhere cannot slip through.
        if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
            return Err(LoadError::Config(format!(
                "refusing non-loopback target {url}: loadgen only targets 127.0.0.0/8 or ::1"
            )));
        }
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .copied()
            .unwrap_or(addrs[0]);
        Ok(Self {
            addr,
            authority: authority.to_owned(),
        })
    }
}

/// Source addresses handed out round-robin.
#[derive(Debug)]
pub struct Sources {
    ips: Vec<Ipv4Addr>,
    next: AtomicUsize,
}

impl Sources {
    /// `127.0.0.1-127.0.0.8` (a range within one /24) or `127.0.0.1,127.0.0.2`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |what: &str| LoadError::Config(format!("bad --sources {spec:?}: {what}"));
        let mut ips = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((from, to)) = part.split_once('-') {
                let from: Ipv4Addr = from.parse().map_err(|_| bad("not an address"))?;
                let to: Ipv4Addr = to.parse().map_err(|_| bad("not an address"))?;
                let (f, t) = (from.octets(), to.octets());
                if f[..3] != t[..3] || f[3] > t[3] {
                    return Err(bad("a range must stay within one /24 and go upward"));
                }
                ips.extend((f[3]..=t[3]).map(|last| Ipv4Addr::new(f[0], f[1], f[2], last)));
            } else {
                ips.push(part.parse().map_err(|_| bad("not an address"))?);
            }
        }
        if ips.is_empty() {
            return Err(bad("no address"));
        }
        if let Some(ip) = ips.iter().find(|ip| !ip.is_loopback()) {
            return Err(bad(&format!("{ip} is not loopback")));
        }
        Ok(Self {
            ips,
            next: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.ips.len()
    }

    fn pick(&self) -> IpAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.ips.len();
        IpAddr::V4(self.ips[i])
    }
}

/// Opens a TCP connection to the target from the next source address.
pub async fn connect(target: &Target, sources: &Sources) -> Result<TcpStream> {
    let socket = if target.addr.is_ipv4() {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(sources.pick(), 0))?;
        socket
    } else {
        // ::1 has a single address; source rotation only applies to IPv4.
        TcpSocket::new_v6()?
    };
    let stream = socket.connect(target.addr).await?;
    // Chat frames are small and latency is what we measure.
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_remote_targets() {
        assert!(Target::parse("http://127.0.0.1:8080").is_ok());
        assert!(Target::parse("http://localhost:8080").is_ok());
        assert!(Target::parse("http://10.0.0.1:8080").is_err());
        assert!(Target::parse("http://192.168.1.1").is_err());
        assert!(Target::parse("https://127.0.0.1:8080").is_err());
    }

    #[test]
    fn parses_source_ranges() {
        let s = Sources::parse("127.0.0.1-127.0.0.4").expect("range");
        assert_eq!(s.len(), 4);
        assert!(Sources::parse("10.0.0.1").is_err());
        assert!(Sources::parse("127.0.0.5-127.0.0.1").is_err());
    }
}
