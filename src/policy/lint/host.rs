//! [`SystemHost`]: the lint's questions asked of the machine itself. This is the one part of
//! the lint that is not pure; it binds nothing that stays bound and creates nothing.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

use super::Host;

/// The machine `ftpgate --check` runs on.
pub struct SystemHost;

impl Host for SystemHost {
    /// Binds a UDP socket to the address with port 0 and drops it at once: the kernel
    /// answers EADDRNOTAVAIL for an address that is not one of the host's, as it would for
    /// the TCP listener, without taking the listener's port or needing privileges for it.
    /// Any other error (no IPv6 on this host, a sandbox) is not this warning's business.
    fn has_address(&self, address: SocketAddr) -> bool {
        let mut probe = address;
        probe.set_port(0);
        match UdpSocket::bind(probe) {
            Ok(_) => true,
            Err(err) => err.raw_os_error() != Some(libc::EADDRNOTAVAIL),
        }
    }

    fn cannot_create(&self, path: &Path) -> Option<String> {
        // An existing file is opened as it is (its owner and mode are the loader's
        // business); for anything else, the directory tells.
        if std::fs::symlink_metadata(path).is_ok() {
            return None;
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => return None,
        };
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => None,
            Ok(_) => Some(format!("{} is not a directory", dir.display())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                Some(format!("the directory {} does not exist", dir.display()))
            }
            Err(err) => Some(format!("the directory {}: {err}", dir.display())),
        }
    }

    fn certificate_not_after(&self, path: &Path) -> Option<i64> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_file_iter(path)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|der| super::x509::not_after(&der))
            .min()
    }

    fn certificate_key_type(&self, path: &Path) -> Option<super::KeyType> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let first = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
        super::x509::key_type(&first)
    }

    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}
