//! Started as root, ftpgate binds its listeners and then gives root up for the account the
//! policy names (`user`, default `ftpgate`), keeping no capability: the listeners are the
//! only thing it needs root for. Without that account it refuses to run as root.
//!
//! With one worker the process binds, drops and serves. With several, the supervisor binds
//! one socket per listener for each worker (SO_REUSEPORT, as each worker would), drops,
//! and hands each worker its sockets (`--listen-fd ADDR=FD`); it keeps them open, so a
//! worker it restarts gets the same ones. Started without root (the packaged unit: user
//! `ftpgate` with `CAP_NET_BIND_SERVICE`), nothing changes: each worker binds its own.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use crate::os;
use crate::policy::Policy;
use crate::services::sockets::bind_control_listener;

/// The account to become, when started as root: `None` when not root (or when the policy
/// says `"user": "root"`, which `--check` warns about).
pub fn target(policy: &Policy) -> Result<Option<(u32, u32)>, String> {
    if os::effective_uid() != 0 {
        return Ok(None);
    }
    match os::lookup_user(&policy.user) {
        Ok(Some((0, _))) => {
            log::warn!(
                "running as root: the policy's \"user\" is {:?} (uid 0); every privilege is kept",
                policy.user
            );
            Ok(None)
        }
        Ok(Some(ids)) => Ok(Some(ids)),
        Ok(None) => Err(format!(
            "ftpgate refuses to run as root without an unprivileged account to give root up \
             for: the user {:?} (policy key \"user\", default ftpgate) does not exist; create \
             it (the packages do: adduser --system --group ftpgate) or name another account",
            policy.user
        )),
        Err(e) => Err(format!("cannot look up the user {:?}: {e}", policy.user)),
    }
}

/// Binds every listener of `policy` (as the worker would, SO_REUSEPORT).
pub fn bind_listeners(policy: &Policy) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, String> {
    policy
        .listeners
        .iter()
        .map(|l| {
            let listener = bind_control_listener(l.address)
                .map_err(|e| format!("cannot listen on {}: {e}", l.address))?;
            Ok((l.address, std::net::TcpListener::from(listener)))
        })
        .collect()
}

/// Gives root up for `uid`/`gid` for good, and says so.
pub fn drop_to(user: &str, (uid, gid): (u32, u32)) -> Result<(), String> {
    os::drop_privileges(uid, gid).map_err(|e| format!("cannot give up root for {user}: {e}"))?;
    log::info!("listeners bound; running as {user} (uid {uid}, gid {gid}), no capabilities");
    Ok(())
}

/// Makes `listeners` survive the exec of a worker, and returns their `--listen-fd`
/// arguments.
pub fn inheritable_args(
    listeners: &[(SocketAddr, std::net::TcpListener)],
) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for (addr, listener) in listeners {
        os::set_inheritable(listener.as_fd()).map_err(|e| format!("{addr}: {e}"))?;
        args.push("--listen-fd".to_owned());
        args.push(format!("{addr}={}", listener.as_raw_fd()));
    }
    Ok(args)
}

/// A `--listen-fd` argument: `ADDR=FD`.
pub fn parse_listen_fd(value: &str) -> Option<(SocketAddr, i32)> {
    let (addr, fd) = value.rsplit_once('=')?;
    Some((addr.parse().ok()?, fd.parse().ok()?))
}

/// The inherited listeners of a worker, as mio listeners.
pub fn adopt(
    fds: &[(SocketAddr, i32)],
) -> Result<Vec<(SocketAddr, mio::net::TcpListener)>, String> {
    fds.iter()
        .map(|&(addr, fd)| {
            let std = os::inherited_listener(fd).map_err(|e| format!("{addr}: {e}"))?;
            Ok((addr, mio::net::TcpListener::from_std(std)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fd_arguments_name_an_address_and_a_descriptor() {
        assert_eq!(
            parse_listen_fd("127.0.0.1:21=5"),
            Some(("127.0.0.1:21".parse().expect("addr"), 5))
        );
        assert_eq!(
            parse_listen_fd("[::1]:990=7"),
            Some(("[::1]:990".parse().expect("addr"), 7))
        );
        assert_eq!(parse_listen_fd("127.0.0.1:21"), None);
        assert_eq!(parse_listen_fd("x=5"), None);
        assert_eq!(parse_listen_fd("127.0.0.1:21=-"), None);
    }
}
