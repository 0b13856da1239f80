//! The VRRP notify FIFO between real processes in network namespaces
//! (scripts/netns-lab): keepalived's `INSTANCE`/`GROUP` lines read by a
//! real script (a shell `while read` loop the daemon starts with the FIFO's
//! path), and a FIFO that nobody reads, already full, that does not delay
//! a single advert. Needs root (fails under CI=true without it, skips
//! elsewhere).

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::lab::Lab;

const LONG: Duration = Duration::from_secs(20);

fn instance(name: &str, vrid: u8, prio: u8, vip: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
    )
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The FIFO's reader: a script that appends each line it reads to `out`.
fn reader_script(lab: &Lab, out: &Path) -> std::path::PathBuf {
    let reader = lab.path("reader.sh");
    std::fs::write(
        &reader,
        format!(
            "#!/bin/sh\nwhile read -r line; do echo \"$line\" >> {}; done < \"$1\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&reader, std::fs::Permissions::from_mode(0o755)).unwrap();
    reader
}

fn wait_line(lab: &Lab, path: &Path, want: &str) {
    let start = Instant::now();
    while start.elapsed() < LONG {
        if lines(path).iter().any(|l| l == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no line {want:?} in {}: {:?}\n{}",
        path.display(),
        lines(path),
        lab.logs()
    );
}

#[test]
fn instance_and_group_lines_reach_the_fifo_script() {
    let Some(mut lab) = Lab::up("fifo", 2, &[]) else {
        return;
    };
    let fifo = lab.path("d1.fifo");
    let out = lab.path("d1.lines");
    let reader = reader_script(&lab, &out);
    let d1 = format!(
        "global_defs {{\n  vrrp_notify_fifo {}\n  vrrp_notify_fifo_script {}\n}}\n\
         vrrp_sync_group G1 {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n{}{}",
        fifo.display(),
        reader.display(),
        instance("VI_1", 51, 150, "10.99.0.200"),
        instance("VI_2", 52, 150, "10.99.0.201"),
    );
    lab.start_ipvsdir("d1", &d1);
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_2", "MASTER", LONG);
    for want in [
        "INSTANCE \"VI_1\" BACKUP 150",
        "INSTANCE \"VI_1\" MASTER 150",
        "INSTANCE \"VI_2\" MASTER 150",
        "GROUP \"G1\" BACKUP 0",
        "GROUP \"G1\" MASTER 0",
    ] {
        wait_line(&lab, &out, want);
    }
    lab.signal("d1", libc::SIGTERM);
    lab.wait_exit("d1", Duration::from_secs(10));
    // Written before the script was stopped (the stop waits for it to read).
    for want in ["INSTANCE \"VI_1\" STOP 150", "INSTANCE \"VI_2\" STOP 150"] {
        wait_line(&lab, &out, want);
    }
    let got = lines(&out);
    // Each state in the order it was entered.
    let at = |l: &str| got.iter().position(|x| x == l).unwrap();
    assert!(at("INSTANCE \"VI_1\" BACKUP 150") < at("INSTANCE \"VI_1\" MASTER 150"));
    assert!(at("INSTANCE \"VI_1\" MASTER 150") < at("INSTANCE \"VI_1\" STOP 150"));
    assert!(!fifo.exists(), "the FIFO ipvsdir made is removed at stop");
    println!("lines: {got:?}");
}

#[test]
fn a_full_fifo_nobody_reads_does_not_delay_adverts() {
    let Some(mut lab) = Lab::up("fifofl", 2, &[]) else {
        return;
    };
    // The test makes the FIFO, shrinks it to one page and fills it: every
    // line the daemon writes finds it full.
    let fifo = lab.path("d2.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let mut hold = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // SAFETY: F_SETPIPE_SZ on a descriptor we own.
    unsafe { libc::fcntl(hold.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    while hold.write(&[b'x'; 512]).is_ok() {}
    // d2 (the master-to-be) writes to it; d1, lower, watches its adverts.
    let d2 = format!(
        "global_defs {{\n  notify_fifo {}\n}}\n{}",
        fifo.display(),
        instance("VI_1", 51, 150, "10.99.0.200")
    );
    lab.start_ipvsdir("d2", &d2);
    let took = lab.wait_state("d2", "VI_1", "MASTER", LONG);
    println!("d2 MASTER after {:.3} s", took.as_secs_f64());
    lab.start_ipvsdir("d1", &instance("VI_1", 51, 100, "10.99.0.200"));
    lab.wait_state("d1", "VI_1", "BACKUP", LONG);
    // Three Master_Down_Intervals: one late advert would make d1 master.
    std::thread::sleep(Duration::from_secs(11));
    let d1_log = lab.log("d1");
    assert!(
        !d1_log.contains("Entering MASTER STATE"),
        "d1 took over: d2's adverts were late\n{}",
        lab.logs()
    );
    assert_eq!(lab.state("d2", "VI_1").as_deref(), Some("MASTER"));
    let d2_log = lab.log("d2");
    assert!(d2_log.contains("line dropped"), "{d2_log}");
    // A FIFO ipvsdir did not make stays at stop.
    lab.signal("d2", libc::SIGTERM);
    lab.wait_exit("d2", Duration::from_secs(10));
    assert!(fifo.exists());
    drop(hold);
}

/// One run of the event-line scenario with d1 as `keepalived` or ipvsdir
/// (d2, the lower-priority peer, is always ipvsdir): d2 cannot hear d1 and
/// becomes a second, lower-priority master that d1 hears
/// (`MASTER_RX_LOWER_PRI`, `notify_master_rx_lower_pri`), then d1's
/// tracked file raises its priority (`MASTER_PRIORITY`). Returns the FIFO
/// lines with repeats collapsed, and whether the rx script ran.
fn event_lines(tag: &str, keepalived: bool) -> Option<(Vec<String>, bool)> {
    let tools: &[&str] = if keepalived {
        &["nft", "keepalived"]
    } else {
        &["nft"]
    };
    let mut lab = Lab::up(tag, 2, tools)?;
    let fifo = lab.path("d1.fifo");
    let out = lab.path("d1.lines");
    let rx = lab.path("rx.out");
    let tracked = lab.path("weight");
    std::fs::write(&tracked, "0\n").unwrap();
    let reader = reader_script(&lab, &out);
    let rx_script = lab.path("rx.sh");
    std::fs::write(
        &rx_script,
        format!("#!/bin/sh\necho rx >> {}\n", rx.display()),
    )
    .unwrap();
    std::fs::set_permissions(&rx_script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d1 = format!(
        "global_defs {{\n  vrrp_notify_fifo {}\n  vrrp_notify_fifo_script {}\n  vrrp_notify_priority_changes\n}}\n\
         track_file tf {{\n  file {}\n  weight 1\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 200\n  advert_int 1\n\
         notify_master_rx_lower_pri {}\n  track_file {{\n    tf\n  }}\n  virtual_ipaddress {{\n    10.99.0.200/24 dev eth0\n  }}\n}}\n",
        fifo.display(),
        reader.display(),
        tracked.display(),
        rx_script.display(),
    );
    if keepalived {
        lab.start_keepalived("d1", &d1);
    } else {
        lab.start_ipvsdir("d1", &d1);
    }
    wait_line(&lab, &out, "INSTANCE \"VI_1\" MASTER 200");
    // d2 hears nothing from d1: it becomes master at priority 100.
    lab.sh("d2", "nft add table inet t; nft add chain inet t in '{ type filter hook input priority 0; }'; nft add rule inet t in ip protocol 112 drop");
    lab.start_ipvsdir("d2", &instance("VI_1", 51, 100, "10.99.0.200"));
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    wait_line(&lab, &out, "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 200");
    lab.sh("d2", "nft delete table inet t");
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    std::fs::write(&tracked, "10\n").unwrap();
    wait_line(&lab, &out, "INSTANCE \"VI_1\" MASTER_PRIORITY 210");
    let start = Instant::now();
    while !rx.exists() && start.elapsed() < LONG {
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.signal("d1", libc::SIGTERM);
    lab.wait_exit("d1", Duration::from_secs(10));
    let mut got = lines(&out);
    got.dedup();
    Some((got, rx.exists()))
}

#[test]
fn event_lines_and_rx_lower_pri_script_match_keepalived() {
    let Some((theirs, their_rx)) = event_lines("fifoka", true) else {
        return;
    };
    let Some((ours, our_rx)) = event_lines("fifoev", false) else {
        return;
    };
    println!("keepalived: {theirs:?}\nipvsdir:    {ours:?}");
    assert!(their_rx, "keepalived ran notify_master_rx_lower_pri");
    assert!(our_rx, "ipvsdir runs notify_master_rx_lower_pri");
    // keepalived stops its FIFO script before the script reads the STOP
    // line; ipvsdir lets it read what is left first.
    let mut ours = ours;
    assert_eq!(ours.pop().as_deref(), Some("INSTANCE \"VI_1\" STOP 210"));
    let theirs: Vec<String> = theirs
        .into_iter()
        .filter(|l| !l.contains(" STOP "))
        .collect();
    assert_eq!(ours, theirs);
}
