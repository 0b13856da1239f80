//! The checker engine against real listeners and scripts on this machine:
//! probes are deduplicated, a server goes down after the attempt and its
//! retries fail, comes back on the first success, MISC_CHECK exit codes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipvsdir::check::engine::{self, Board, Clock, ProbeUpdate};
use ipvsdir::check::health::ProbePlan;
use ipvsdir::check::probe::ProbeContext;
use ipvsdir::config::{LoadOptions, load_str};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn config(text: &str) -> ipvsdir::config::model::Config {
    let l = load_str("t.conf", text, &LoadOptions::default());
    l.config.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// A listener that counts the connections its application accepts.
async fn counting_listener(addr: &str) -> (TcpListener, Arc<AtomicUsize>) {
    let l = TcpListener::bind(addr).await.unwrap();
    (l, Arc::new(AtomicUsize::new(0)))
}

fn serve(l: TcpListener, count: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    })
}

/// The engine running `plan`: its board, its updates, its tasks.
fn start(
    plan: &ProbePlan,
) -> (
    Arc<Board>,
    mpsc::Receiver<ProbeUpdate>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = mpsc::channel(64);
    let clock = Clock(Instant::now());
    let board = Board::new(plan, clock.now());
    let tasks = engine::spawn(
        plan,
        Arc::new(ProbeContext::default()),
        clock,
        board.clone(),
        tx,
    );
    (board, rx, tasks)
}

async fn next(rx: &mut mpsc::Receiver<ProbeUpdate>) -> ProbeUpdate {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a probe update within 10 s")
        .expect("engine running")
}

/// Waits (up to 10 s) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_probe_retries_then_down_then_up_again() {
    let (l, count) = counting_listener("127.0.0.5:0").await;
    let addr = l.local_addr().unwrap();
    let mut text = String::new();
    for vip in 1..=3 {
        text.push_str(&format!(
            "virtual_server 10.0.0.{vip} 80 {{\n real_server 127.0.0.5 {} {{\n  TCP_CHECK {{\n   delay_loop 0.2\n   retry 2\n   delay_before_retry 0.05\n   connect_timeout 1\n   warmup 0\n  }}\n }}\n}}\n",
            addr.port()
        ));
    }
    let cfg = config(&text);
    let plan = ProbePlan::new(&cfg);
    assert_eq!(plan.probes.len(), 1, "three identical checkers, one probe");
    let server = serve(l, count.clone());

    let (board, mut rx, tasks) = start(&plan);
    until("2 probes", || board.stats.snapshot().probes >= 2).await;
    assert!(board.take_news(), "the first result is news");
    let u = rx.try_recv().expect("an update for the first result");
    assert_eq!((u.changed, u.weight_changed), (None, false), "{u:?}");
    let (t0, p0) = (Instant::now(), board.stats.snapshot().probes);
    until("8 probes", || board.stats.snapshot().probes >= 8).await;
    let (elapsed, ran) = (t0.elapsed(), board.stats.snapshot().probes - p0);
    // Healthy results that say the same thing: no update, no news.
    assert!(rx.try_recv().is_err(), "no update while nothing changes");
    assert!(!board.take_news(), "the same result again is not news");
    let s = board.state(0);
    assert!(s.up && s.last.as_ref().unwrap().ok, "{s:?}");
    assert_eq!(s.last.as_ref().unwrap().reason, "connected");
    // One probe served all three virtual servers: at most one run per
    // delay_loop (a late engine runs fewer, never more); three probes
    // would have made the 6 runs in a third of the time.
    let most = (elapsed.as_secs_f64() / 0.2) as u64 + 2;
    assert!(
        ran <= most,
        "{ran} probes in {elapsed:?}: more than one per round"
    );
    // TCP_CHECK is half-open (SYN, SYN-ACK, RST): the server's kernel
    // answered every probe, its application accepted none.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(count.load(Ordering::SeqCst), 0, "a probe reached accept(2)");
    assert_eq!(board.stats.snapshot().failed, 0);

    // Close the listener: the attempt and both retries fail, then it is down.
    server.abort();
    let _ = server.await;
    let u = next(&mut rx).await;
    assert_eq!(
        u,
        ProbeUpdate {
            id: 0,
            changed: Some(false),
            weight_changed: false
        }
    );
    let s = board.state(0);
    assert!(!s.up, "{s:?}");
    assert!(s.last.as_ref().unwrap().reason.contains("refused"), "{s:?}");
    assert_eq!(
        board.stats.snapshot().failed,
        3,
        "down after the attempt and 2 retries"
    );
    assert!(board.take_news());

    // A listener again on the same address: up on the first success.
    let l = TcpListener::bind(addr).await.unwrap();
    let _server = serve(l, count.clone());
    let u = next(&mut rx).await;
    assert_eq!(u.changed, Some(true), "{u:?}");
    assert!(board.state(0).up);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misc_check_exit_codes_and_dynamic_weight() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("code");
    std::fs::write(&state, "0").unwrap();
    let script = dir.path().join("check.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexit $(cat {})\n", state.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = config(&format!(
        "virtual_server 10.0.0.1 80 {{\n real_server 10.1.0.1 80 {{\n  MISC_CHECK {{\n   misc_path \"{}\"\n   misc_dynamic\n   delay_loop 0.1\n   misc_timeout 5\n   warmup 0\n  }}\n }}\n}}\n",
        script.display()
    ));
    let plan = ProbePlan::new(&cfg);
    let (board, mut rx, tasks) = start(&plan);
    until("a probe", || board.stats.snapshot().probes >= 1).await;
    let s = board.state(0);
    assert!(s.up && s.last.as_ref().unwrap().ok, "{s:?}");
    let u = next(&mut rx).await;
    assert_eq!(
        (u.changed, u.weight_changed),
        (None, false),
        "the first result: {u:?}"
    );

    // misc_dynamic: exit 7 is up with weight 5, an update without a state change.
    std::fs::write(&state, "7").unwrap();
    let u = next(&mut rx).await;
    assert_eq!((u.changed, u.weight_changed), (None, true), "{u:?}");
    let s = board.state(0);
    assert!(s.up && s.dynamic_weight == Some(5), "{s:?}");

    // exit 1: down at once (MISC_CHECK retry defaults to 0), with the reason.
    std::fs::write(&state, "1").unwrap();
    let u = next(&mut rx).await;
    assert_eq!((u.changed, u.weight_changed), (Some(false), false), "{u:?}");
    assert_eq!(board.state(0).last.unwrap().reason, "failed (exit 1)");
    for t in tasks {
        t.abort();
    }
}

/// A tiny HTTP server: 200 for paths under /ok, 503 for the rest; counts
/// the connections it accepts.
fn serve_http(l: TcpListener, count: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // The probe writes its request in one segment.
                let mut head = [0u8; 1024];
                if !matches!(s.read(&mut head).await, Ok(n) if n > 0) {
                    return;
                }
                let reply: &[u8] = if head.starts_with(b"GET /ok") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                } else {
                    b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = s.write_all(reply).await;
            });
        }
    })
}

/// TCP_CHECK and HTTP_GET run on the checker thread: many real servers at
/// once, each judged on its own (up, a bad status, a silent server); the
/// thread stops with the task that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_thread_judges_each_server_and_stops_with_its_task() {
    let (l, count) = counting_listener("127.0.0.6:0").await;
    let port = l.local_addr().unwrap().port();
    let server = serve_http(l, count.clone());
    // Accepts (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.6:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let check = |port: u16, path: &str| {
        format!(
            "  real_server 127.0.0.6 {port} {{\n   HTTP_GET {{\n    url {{\n     path {path}\n    }}\n    delay_loop 0.2\n    connect_timeout 0.5\n    retry 0\n    warmup 0\n   }}\n  }}\n"
        )
    };
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "virtual_server 10.0.1.{i} 80 {{\n{}}}\n",
            check(port, &format!("/ok{i}"))
        ));
    }
    text.push_str(&format!(
        "virtual_server 10.0.2.1 80 {{\n{}}}\nvirtual_server 10.0.2.2 80 {{\n{}}}\n",
        check(port, "/busy"),
        check(silent_port, "/ok")
    ));
    text.push_str(&format!(
        "virtual_server 10.0.2.3 80 {{\n  real_server 127.0.0.6 {port} {{\n   TCP_CHECK {{\n    delay_loop 0.2\n    warmup 0\n   }}\n  }}\n}}\n"
    ));
    let cfg = config(&text);
    let plan = ProbePlan::new(&cfg);
    assert_eq!(plan.probes.len(), 23);
    let (board, mut rx, tasks) = start(&plan);
    let reasons = || -> Vec<(bool, String)> {
        board
            .snapshot()
            .into_iter()
            .map(|s| {
                (
                    s.up,
                    s.last.map(|l| l.reason.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    };
    until("every probe judged twice", || {
        board.stats.snapshot().probes >= 2 * 23 && reasons().iter().all(|(_, r)| !r.is_empty())
    })
    .await;
    until("the silent server timed out", || {
        reasons()
            .iter()
            .any(|(up, r)| !up && r.contains("timed out"))
    })
    .await;
    let got = reasons();
    let ok = got
        .iter()
        .filter(|(up, r)| *up && r == "ok (HTTP 200)")
        .count();
    assert_eq!(ok, 20, "{got:?}");
    assert!(got.contains(&(true, "connected".to_string())), "{got:?}");
    assert!(
        got.contains(&(
            false,
            "url /busy: HTTP status 503 not in 200-299".to_string()
        )),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            false,
            "url /ok: timed out after 0.5 s waiting for the response".to_string()
        )),
        "{got:?}"
    );
    // The director heard of each first result and each change.
    let mut updates = 0;
    while rx.try_recv().is_ok() {
        updates += 1;
    }
    assert!(updates >= 23, "{updates} updates");

    for t in tasks {
        t.abort();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = count.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        stopped,
        "probes went on after their task was aborted"
    );
    server.abort();
    drop(silent);
}
