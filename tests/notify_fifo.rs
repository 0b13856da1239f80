//! The LVS notify FIFO read by a real script (a shell `while read` loop
//! started by the daemon with the FIFO's path), on loopback with
//! `-C --no-ipvs` (no root): real-server and virtual-server lines as the
//! real server's port opens and closes, and the FIFO removed at stop.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, HeldPort};

/// The reader: appends each line it reads to `out`.
fn reader_script(dir: &Path, out: &Path) -> std::path::PathBuf {
    let script = dir.join("reader.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile read -r line; do echo \"$line\" >> {}; done < \"$1\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_line(d: &Daemon, out: &Path, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if lines(out).iter().any(|l| l == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no line {want:?}; got {:?}\nlog:\n{}", lines(out), d.log());
}

#[test]
fn rs_and_vs_lines_reach_the_script_and_the_fifo_goes_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("lvs.fifo");
    let out = dir.path().join("lines");
    let script = reader_script(dir.path(), &out);
    let mut held = HeldPort::up();
    let port = held.port;
    let conf = format!(
        "global_defs {{\n lvs_notify_fifo {}\n lvs_notify_fifo_script {}\n}}\n\
         virtual_server 127.0.0.1 80 {{\n delay_loop 1\n lb_kind NAT\n protocol TCP\n\
         real_server 127.0.0.1 {port} {{\n  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n}}\n",
        fifo.display(),
        script.display()
    );
    let d = Daemon::start(&conf, &[]);
    let vs = "[127.0.0.1]:tcp:80";
    let rs = format!("[127.0.0.1]:tcp:{port}");
    // Quorum held from the start (as the quorum_up script runs then).
    wait_line(&d, &out, &format!("VS {vs} UP"));
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    held.stop();
    wait_line(&d, &out, &format!("RS {rs} {vs} DOWN"));
    wait_line(&d, &out, &format!("VS {vs} DOWN"));
    held.start();
    wait_line(&d, &out, &format!("RS {rs} {vs} UP"));
    let got = lines(&out);
    // Each real-server line comes before its virtual server's.
    let rs_down = got.iter().position(|x| x == &format!("RS {rs} {vs} DOWN"));
    let vs_down = got.iter().position(|x| x == &format!("VS {vs} DOWN"));
    assert!(rs_down < vs_down, "{got:?}");
    let log = d.stop();
    assert!(
        !fifo.exists(),
        "the FIFO ipvsdir created is removed at stop\n{log}"
    );
}

#[test]
fn a_fifo_nobody_reads_drops_lines_and_never_holds_the_daemon() {
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("all.fifo");
    let mut held: Vec<HeldPort> = (0..N).map(|_| HeldPort::up()).collect();
    let servers: String = held
        .iter()
        .map(|h| h.port)
        .map(|p| {
            format!(
                " real_server 127.0.0.1 {p} {{\n  TCP_CHECK {{\n   connect_timeout 1\n   retry 0\n  }}\n }}\n"
            )
        })
        .collect();
    // No script: nothing ever reads it.
    let conf = format!(
        "global_defs {{\n notify_fifo {}\n}}\n\
         virtual_server 127.0.0.1 80 {{\n delay_loop 1\n lb_kind NAT\n protocol TCP\n{servers}}}\n",
        fifo.display()
    );
    let d = Daemon::start(&conf, &[]);
    let all = |state: &'static str| {
        move |s: &serde_json::Value| {
            s["health"]["virtual_servers"][0]["real_servers"]
                .as_array()
                .is_some_and(|a| a.len() == N && a.iter().all(|r| r["state"] == state))
        }
    };
    d.wait_status(15, all("up"));
    // The smallest pipe (one page, ~60 lines): a reader that never reads.
    let hold = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // SAFETY: F_SETPIPE_SZ on a descriptor we own.
    unsafe { libc::fcntl(hold.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    for _ in 0..2 {
        held.iter_mut().for_each(HeldPort::stop);
        d.wait_status(15, all("down"));
        held.iter_mut().for_each(HeldPort::start);
        // Health still follows: nothing waited on the full FIFO.
        d.wait_status(15, all("up"));
    }
    let started = Instant::now();
    let log = d.stop();
    assert!(started.elapsed() < Duration::from_secs(5), "{log}");
    assert!(log.contains("line dropped"), "{log}");
    assert!(!fifo.exists(), "{log}");
}

#[test]
fn the_fifo_keywords_are_read_as_keepalived_documents_them() {
    use ipvsdir::config::{LoadOptions, load_str};
    let text = "global_defs {\n notify_fifo_script \"/bin/reader a\" nobody\n notify_fifo /run/all.fifo nobody nogroup\n \
                vrrp_notify_fifo /run/vrrp.fifo\n lvs_notify_fifo_script /bin/lvs\n lvs_notify_fifo relative.fifo\n}\n";
    let l = load_str("t.conf", text, &LoadOptions::default());
    let msgs: Vec<String> = l.diagnostics.items.iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("6:18") && m.contains("needs an absolute path")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("5:2") && m.contains("without `lvs_notify_fifo`")),
        "{msgs:?}"
    );
    assert!(
        !msgs.iter().any(|m| m.contains("not supported")),
        "{msgs:?}"
    );
    // The same file without the bad line loads.
    let text = text.replace(" lvs_notify_fifo relative.fifo\n", "");
    let c = load_str("t.conf", &text, &LoadOptions::default())
        .config
        .unwrap();
    let f = &c.global.notify_fifos;
    let all = f.all.as_ref().unwrap();
    assert_eq!(all.path, Path::new("/run/all.fifo"));
    assert_eq!(
        all.owner.as_ref().unwrap().group.as_deref(),
        Some("nogroup")
    );
    let s = all.script.as_ref().unwrap();
    assert_eq!(
        (s.command.as_str(), s.user.as_ref().unwrap().user.as_str()),
        ("/bin/reader a", "nobody")
    );
    assert_eq!(f.vrrp.as_ref().unwrap().path, Path::new("/run/vrrp.fifo"));
    assert!(f.vrrp.as_ref().unwrap().script.is_none());
    assert!(f.lvs.is_none());
}
