//! `pairbench new NAME`: a group skeleton that runs green as it is: a server that listens
//! on a port, a client that waits for it, talks to it and reports a metric, and hooks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const SERVER: &str = r#"#!/usr/bin/env python3
# Remote test: a tiny TCP echo server. It runs until pairbench ends it after the client.
# PAIRBENCH_PORT is a port pairbench found free for this run; the local test gets the
# same value, so this works on two machines and with runs at the same time (-j, --repeat).
import os, socket
port = int(os.environ["PAIRBENCH_PORT"])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen()
print("listening on", port, flush=True)
while True:
    conn, _ = srv.accept()
    with conn:
        conn.sendall(conn.recv(1024))
"#;

const CLIENT: &str = r#"#!/usr/bin/env bash
# Local test: wait for the server, send it a line, check the answer, report a metric.
set -euo pipefail
# The server listens on PAIRBENCH_PORT (the same value on both sides). The helper waits
# until that port listens on the remote host, without connecting to it.
wait_for_remote_port_open "$PAIRBENCH_PORT"
start=$(date +%s%N)
answer=$(python3 -c 'import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2]))); s.sendall(b"hello\n"); print(s.recv(1024).decode().strip())' "$PAIRBENCH_REMOTE_HOST" "$PAIRBENCH_PORT")
end=$(date +%s%N)
echo "server answered: $answer"
[ "$answer" = hello ] || exit 1
report_metric round_trip $(( (end - start) / 1000 )) us
"#;

const HOOK: &str = "#!/usr/bin/env bash\necho \"$0 in $PWD for group $PAIRBENCH_GROUP\"\n";

/// Create `groups_dir/name` with a working example; refuses to overwrite.
pub fn create(groups_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || name.contains('\0');
    if bad {
        bail!("'{name}' is not a usable group name: use a plain folder name like 'echo'");
    }
    let dir = groups_dir.join(name);
    if dir.exists() {
        bail!("'{}' already exists; choose another name", dir.display());
    }
    let write = |rel: &str, text: &str, exec: bool| -> anyhow::Result<()> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create '{}'", parent.display()))?;
        }
        std::fs::write(&p, text).with_context(|| format!("cannot write '{}'", p.display()))?;
        if exec {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    };
    write("remote/echo_server", SERVER, true)?;
    write("local/echo_client", CLIENT, true)?;
    for h in crate::discover::HOOK_NAMES {
        write(h, HOOK, true)?;
    }
    write(
        "README.md",
        &format!(
            "# {name}\n\nEvery executable in local/ runs against every executable in remote/.\n\
             Add tests, `chmod -x` one to disable it, and run `pairbench run {}`.\n",
            crate::terminal::shell_word(name)
        ),
        false,
    )?;
    Ok(dir)
}
