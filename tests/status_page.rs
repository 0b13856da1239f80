//! The status page and `/api/v1/status` on the metrics listener, against a
//! running daemon on loopback (`-C --no-ipvs`): the document validates
//! against conf/status-v1.schema.json, the page is one self-contained HTML
//! document, and a real browser (Debian's headless Chromium) renders every
//! real server with its state and reason. Chromium missing: a failure
//! under CI=true (scripts/netns-lab/setup installs it), a skip otherwise.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, free_port, is_root, listener, validate_status};
use serde_json::Value;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// One real server up (a listener), one down (nothing listens), one up
/// that the test drains.
fn conf(up: u16, down: u16, drained: u16) -> String {
    let rs = |port: u16, weight: u32| {
        format!(
            " real_server 127.0.0.1 {port} {{\n  weight {weight}\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n"
        )
    };
    format!(
        "virtual_server 127.0.0.1 80 {{\n delay_loop 1\n lb_kind NAT\n protocol TCP\n{}{}{}}}\n",
        rs(up, 3),
        rs(down, 2),
        rs(drained, 1)
    )
}

/// One HTTP/1.0 GET on loopback: (head, body).
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("answer");
    let (head, body) = all.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.to_ascii_lowercase(), body.to_string())
}

/// The real server `addr` in the status document.
fn rs<'a>(s: &'a Value, addr: &str) -> &'a Value {
    s["health"]["virtual_servers"][0]["real_servers"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["real_server"] == addr))
        .unwrap_or(&Value::Null)
}

/// Polls the listener's `/api/v1/status` until `ok` holds (at most `secs`).
fn wait_api(port: u16, secs: u64, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
            let (_, body) = get(port, "/api/v1/status");
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                if ok(&v) {
                    return v;
                }
                last = v;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("/api/v1/status never matched in {secs} s; last: {last}");
}

#[test]
fn the_listener_serves_the_status_document_and_a_self_contained_page() {
    let (_up, p_up) = listener();
    let p_down = free_port();
    let (_other, p_other) = listener();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(
        &conf(p_up, p_down, p_other),
        &["--metrics-listen", addr.as_str()],
    );
    let down = format!("127.0.0.1:{p_down}");
    // Real servers start up (keepalived's default): the one nothing
    // listens on goes down, and that is a recorded transition.
    let doc = wait_api(port, 15, |s| {
        rs(s, &down)["state"] == "down"
            && s["transitions"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == down.as_str()))
    });
    validate_status(&doc);
    assert_eq!(doc["version"], 1);
    let t = doc["transitions"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == down.as_str()))
        .expect("the down server's transition");
    assert_eq!(t["kind"], "real_server");
    assert_eq!(t["virtual_server"], "[127.0.0.1]:tcp:80");
    assert_eq!(t["to"], "down");
    assert_eq!(t["reasons"][0], "TCP_CHECK: connection refused", "{t}");
    // The status socket answers the same document.
    let socket = d.status().expect("the status socket's document");
    assert_eq!(socket["transitions"], doc["transitions"]);

    let (head, _) = get(port, "/api/v1/status");
    assert!(head.starts_with("http/1.0 200 "), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");

    let (head, page) = get(port, "/");
    assert!(head.starts_with("http/1.0 200 "), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("content-security-policy: default-src 'none'"));
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Self-contained: no address elsewhere (no CDN, font or image).
    for external in ["http://", "https://", "//cdn", "src=\"//", "@import"] {
        assert!(!page.contains(external), "the page refers to {external}");
    }
    // Data goes into the page as text, never as markup.
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(!page.contains(sink), "the page uses {sink}");
    }
    assert!(page.contains("api/v1/status"));

    let (head, _) = get(port, "/nothing-here");
    assert!(head.starts_with("http/1.0 404 "), "{head}");
    let (head, body) = get(port, "/metrics");
    assert!(head.starts_with("http/1.0 200 "), "{head}");
    assert!(body.contains("ipvsdir_"), "{body}");
    d.stop();
}

/// Debian's chromium, or None (after saying why) outside CI.
fn chromium_or_skip() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if in_ci() => {
            panic!("CI=true but chromium is missing (scripts/netns-lab/setup installs it)")
        }
        None => {
            eprintln!("SKIP: chromium is not installed (apt-get install chromium)");
            None
        }
    }
}

/// Runs headless Chromium on `url` with `args`, for at most a minute.
fn chromium(bin: &Path, profile: &Path, args: &[&str], url: &str) -> Output {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let mut out = child.wait_with_output().expect("chromium's result");
    out.stdout = reader.join().unwrap_or_default();
    out
}

/// The part of the DOM about one real server: from its `data-rs` to the
/// next one's or the end of its section.
fn server_part<'a>(dom: &'a str, addr: &str) -> &'a str {
    let key = format!("data-rs=\"{addr}\"");
    let start = dom
        .find(&key)
        .unwrap_or_else(|| panic!("{addr} is not on the page:\n{dom}"));
    let rest = &dom[start + key.len()..];
    let end = ["data-rs=\"", "</section>"]
        .iter()
        .filter_map(|k| rest.find(k))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The text of a DOM fragment, one line per text node, entities decoded.
fn text_lines(html: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_tag = false;
    let mut cur = String::new();
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                if !cur.trim().is_empty() {
                    lines.push(cur.trim().to_string());
                }
                cur.clear();
            }
            '>' => in_tag = false,
            c if !in_tag => cur.push(c),
            _ => {}
        }
    }
    lines
        .into_iter()
        .map(|l| {
            l.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&nbsp;", " ")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The text of the page's `<main>` (what a reader sees), one line per text node.
fn page_text(dom: &str) -> Vec<String> {
    let start = dom.find("<main>").unwrap_or(0);
    let end = dom.find("</main>").unwrap_or(dom.len()).max(start);
    text_lines(&dom[start..end])
}

/// target/test-artefacts (beside the binaries cargo built for this run).
fn artefacts() -> PathBuf {
    let bin = PathBuf::from(common::daemon::BIN);
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("target/PROFILE/ipvsdir");
    let dir = target.join("test-artefacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artefacts");
    dir
}

#[test]
fn chromium_renders_every_real_server_with_its_state_and_reason() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    if !is_root() {
        // ipvsdir ctl (the drain) is root only.
        assert!(!in_ci(), "CI=true but not root: ipvsdir ctl is root only");
        eprintln!("SKIP: the drain needs root (ipvsdir ctl)");
        return;
    }
    let (_up, p_up) = listener();
    let p_down = free_port();
    let (_drained, p_drained) = listener();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start(
        &conf(p_up, p_down, p_drained),
        &["--metrics-listen", listen.as_str()],
    );
    let (up, down, drained) = (
        format!("127.0.0.1:{p_up}"),
        format!("127.0.0.1:{p_down}"),
        format!("127.0.0.1:{p_drained}"),
    );
    d.wait_status(15, |s| {
        rs(s, &up)["state"] == "up"
            && rs(s, &down)["state"] == "down"
            && rs(s, &drained)["state"] == "up"
    });
    let out = d.cli(&["ctl", "drain", &drained]);
    assert!(
        out.status.success(),
        "ctl drain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.wait_status(5, |s| rs(s, &drained)["state"] == "draining");

    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://{listen}/");
    let out = chromium(&browser, profile.path(), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium --dump-dom failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for (addr, state, lines) in [
        (&up, "up", vec!["up", "weight 3, table weight 3"]),
        (
            &down,
            "down",
            vec![
                "down",
                "weight 2, not in the table",
                "TCP_CHECK: connection refused",
            ],
        ),
        (
            &drained,
            "draining",
            vec![
                "draining",
                "weight 1, table weight 0",
                "operator: drain (weight 0, connections finish)",
            ],
        ),
    ] {
        let part = server_part(&dom, addr);
        let text = text_lines(&part[part.find('>').map_or(0, |i| i + 1)..]);
        println!("page: {addr}: {}", text.join(" | "));
        assert!(
            part.starts_with(&format!(" data-state=\"{state}\"")),
            "{addr} is not shown {state}: {part}"
        );
        for l in lines {
            assert!(text.iter().any(|t| t == l), "{addr}: no {l:?} in {text:?}");
        }
        assert!(
            text.iter()
                .any(|t| t.starts_with("since ") && t.ends_with(" ago")),
            "{addr}: no relative since in {text:?}"
        );
    }
    // The drain is highlighted, and listed among the operator's overrides.
    assert!(
        dom.contains(&format!("class=\"rs drain\" data-rs=\"{drained}\"")),
        "the drained server is not highlighted"
    );
    assert!(dom.contains(&format!("data-override=\"{drained}\"")));
    // The quorum, the transition to down, the refresh time, no error banner.
    let all = page_text(&dom);
    for l in [
        "quorum 1: held",
        "Recent transitions",
        "No VRRP in this daemon (checkers only), or not started yet.",
    ] {
        assert!(all.iter().any(|t| t == l), "no {l:?} on the page");
    }
    assert!(
        all.iter()
            .any(|t| t == &format!("{down} of [127.0.0.1]:tcp:80")),
        "the down server's transition is not listed: {all:?}"
    );
    assert!(all.iter().any(|t| t.starts_with("refreshed ")), "{all:?}");
    assert!(
        dom.contains("<div id=\"error\" role=\"alert\"></div>"),
        "the error banner is shown"
    );

    // A phone-sized screenshot, kept as a test artefact.
    let shot = artefacts().join("status-page-phone.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &browser,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=390,844",
            "--hide-scrollbars",
        ],
        &url,
    );
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "no screenshot at {} ({:?}):\n{}",
        shot.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("screenshot (390x844, a phone): {}", shot.display());

    // The same page where the API fails: an error banner says so.
    let (_, page) = get(port, "/");
    d.stop();
    let failing = fake_listener(page, None);
    let out = chromium(
        &browser,
        profile.path(),
        &["--dump-dom"],
        &format!("http://127.0.0.1:{failing}/"),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let banner = page_text(&dom)
        .into_iter()
        .find(|t| t.starts_with("Cannot read"));
    println!("page with a failing API: {banner:?}");
    assert_eq!(
        banner.as_deref(),
        Some("Cannot read api/v1/status: HTTP 503 (no data yet)"),
        "{dom}"
    );
    assert!(dom.contains("<div id=\"error\" role=\"alert\" class=\"shown\">"));
}

/// A page that shows the status page in a 320 px wide frame (a small
/// phone) and, after it has rendered, how wide its content is.
const WIDTH_PROBE: &str = "<!DOCTYPE html><html><body style=\"margin:0\">\
<iframe id=\"f\" src=\"/\" style=\"width:320px;height:800px;border:0\"></iframe><pre id=\"out\"></pre>\
<script>setTimeout(() => { const d = document.getElementById('f').contentDocument.documentElement; \
document.getElementById('out').textContent = 'content ' + d.scrollWidth + ' of ' + d.clientWidth; }, 3000);</script>\
</body></html>";

/// A loopback server with `page` at `/`, [`WIDTH_PROBE`] at
/// `/width-probe` and `api` (None: a 503) for anything else; its port.
fn fake_listener(page: String, api: Option<String>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, kind, body) = match &api {
                _ if req.starts_with("GET / ") => {
                    ("200 OK", "text/html; charset=utf-8", page.as_str())
                }
                _ if req.starts_with("GET /width-probe ") => {
                    ("200 OK", "text/html; charset=utf-8", WIDTH_PROBE)
                }
                Some(doc) => ("200 OK", "application/json", doc.as_str()),
                None => ("503 Service Unavailable", "text/plain", "no\n"),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A document with VRRP instances and names that look like markup.
fn crafted_document() -> Value {
    serde_json::json!({
        "version": 1, "pid": 42, "generated": "2026-12-04T10:00:00.000Z",
        "daemon": {"reloads_ok": 2, "reloads_failed": 0, "last_load_seconds": 0.01},
        "vrrp": {"pid": 42, "written": "2026-12-04T09:59:59.000Z", "unmatched_drops": {},
            "scripts": [{"name": "chk_<i>nginx</i>", "status": "GOOD"}],
            "instances": [{
                "name": "VI_<img src=x onerror=alert(1)>", "interface": "eth0", "vrid": 51,
                "version": 2, "state": "MASTER", "priority": 150, "effective_priority": 140,
                "master": "10.0.0.2", "master_down_interval": 3.4, "vips": ["10.0.0.1/32", "10.0.0.5/32"],
                "adverts_sent": 1, "adverts_received": 0, "late_adverts": 0, "dropped": {},
                "became_master": 1, "released_master": 0,
                "priority_zero_received": 0, "priority_zero_sent": 0, "garp_master_delay": 5.0
            }, {
                "name": "VI_2", "interface": "eth1", "vrid": 52, "version": 3, "state": "BACKUP",
                "priority": 100, "effective_priority": 100, "master": "10.0.1.3",
                "master_down_interval": 3.6, "vips": [], "adverts_sent": 0, "adverts_received": 9,
                "late_adverts": 0, "dropped": {}, "became_master": 0, "released_master": 0,
                "priority_zero_received": 0, "priority_zero_sent": 0, "garp_master_delay": 5.0
            }]},
        "health": {"pid": 42, "written": "2026-12-04T09:59:59.000Z", "virtual_servers": [{
            "name": "group <b>web</b>", "services": ["TCP 10.0.0.1:80"], "quorum": 2,
            "quorum_held": false, "real_servers": [{
                "real_server": "10.0.0.11:80", "state": "no quorum", "up": true,
                "since": "2026-12-04T09:57:50.000Z", "reasons": [], "weight": 1,
                "table_weight": null, "operator": {"weight": 5},
                "checks": [{"kind": "HTTP_GET", "up": true, "since": "2026-12-04T09:57:50.000Z",
                    "last_ok": true, "last_reason": "status 200"}]
            }, {
                "real_server": "10.0.0.12:80", "state": "inhibited", "up": false,
                "since": "2026-12-04T08:00:00.000Z",
                "reasons": ["HTTP_GET: url /h: digest <script>alert(2)</script> mismatch"],
                "weight": 2, "table_weight": 0, "operator": null,
                "checks": [{"kind": "HTTP_GET", "up": false, "since": "2026-12-04T08:00:00.000Z",
                    "last_ok": false, "last_reason": "digest mismatch"}]
            }]}]},
        "transitions": [{
            "at": "2026-12-04T09:59:00.000Z", "kind": "vrrp_instance", "virtual_server": null,
            "name": "VI_2", "from": "MASTER", "to": "BACKUP",
            "reasons": ["effective priority 100, master 10.0.1.3"]
        }],
        "connections": [{"service": "TCP 10.0.0.1:80", "real_servers": [
            {"real_server": "10.0.0.12:80", "active": 7, "inactive": 31, "persistent": 0}
        ]}]
    })
}

#[test]
fn chromium_shows_vrrp_quorum_and_overrides_and_inserts_data_as_text() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let doc = crafted_document();
    validate_status(&doc);
    let page = std::fs::read_to_string(common::repo().join("src/metrics/page.html"))
        .expect("src/metrics/page.html");
    let port = fake_listener(page, Some(doc.to_string()));
    let profile = tempfile::tempdir().expect("profile dir");
    let out = chromium(
        &browser,
        profile.path(),
        &["--dump-dom"],
        &format!("http://127.0.0.1:{port}/"),
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = page_text(&dom);
    println!("page from a crafted document: {}", text.join(" | "));
    for l in [
        "VI_<img src=x onerror=alert(1)>",
        "MASTER",
        "priority 150 (effective 140)",
        "master 10.0.0.2",
        "VIPs: 10.0.0.1/32 10.0.0.5/32",
        "VI_2",
        "VIPs: none",
        "group <b>web</b>",
        "quorum 2: LOST",
        "no quorum",
        "operator: weight 5",
        "inhibited",
        "weight 2, table weight 0",
        "7 active, 31 inactive connections",
        "since 2h00m ago",
        "HTTP_GET: url /h: digest <script>alert(2)</script> mismatch",
        "VRRP VI_2",
        "effective priority 100, master 10.0.1.3",
        "1m00s ago",
    ] {
        assert!(
            text.iter().any(|t| t == l),
            "no {l:?} on the page: {text:?}"
        );
    }
    // What looked like markup is text: escaped in the DOM, no element made.
    assert!(
        dom.contains("VI_&lt;img src=x onerror=alert(1)&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<img"), "an element was made from data");
    assert!(!dom.contains("<b>"), "an element was made from data");
    assert!(dom.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));

    // On a 320 px wide screen nothing is wider than the screen (no
    // horizontal scrolling), long names and reasons included.
    let out = chromium(
        &browser,
        profile.path(),
        &["--dump-dom", "--window-size=390,844"],
        &format!("http://127.0.0.1:{port}/width-probe"),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let width = text_lines(&dom)
        .into_iter()
        .find(|t| t.starts_with("content "))
        .unwrap_or_else(|| panic!("the width probe did not run: {dom}"));
    println!("width at 320 px: {width}");
    let n: Vec<u32> = width.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(
        n.len() == 2 && n[0] <= n[1] && n[1] > 0,
        "the page scrolls sideways on a phone: {width}"
    );
}

/// A VRRP instance's transitions reach the status document: a director
/// alone in a network namespace becomes MASTER (root and scripts/netns-lab).
#[test]
fn a_vrrp_instance_becoming_master_is_a_recorded_transition() {
    let Some(mut lab) = common::lab::Lab::up("pgvrrp", 1, &[]) else {
        return;
    };
    let conf = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
                priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.99.0.200/24 dev eth0\n  }\n}\n";
    lab.start_ipvsdir("d1", conf);
    lab.wait_state("d1", "VI_1", "MASTER", Duration::from_secs(20));
    let sock = lab.path("d1.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    let doc = loop {
        let json = lab.sh(
            "d1",
            &format!(
                "{} --dump --json --control-socket {}",
                common::ipvsdir_bin(),
                sock.display()
            ),
        );
        let doc: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        let to_master = doc["transitions"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["to"] == "MASTER"));
        if to_master || Instant::now() > deadline {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    validate_status(&doc);
    let t = doc["transitions"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["to"] == "MASTER"))
        .unwrap_or_else(|| panic!("no transition to MASTER in {doc}"));
    println!("VRRP transition: {t}");
    assert_eq!(t["kind"], "vrrp_instance");
    assert_eq!(t["name"], "VI_1");
    assert_eq!(t["virtual_server"], Value::Null);
    assert_eq!(t["from"], "BACKUP");
    assert_eq!(t["reasons"][0], "effective priority 150, master 10.99.0.11");
}

/// `metrics_listen` in global_defs opens the listener as the flag does; a
/// bad value is a configuration error with its place in the file.
#[test]
fn the_global_defs_keyword_opens_the_listener() {
    let (_up, p_up) = listener();
    let port = free_port();
    let text = format!(
        "global_defs {{\n metrics_listen 127.0.0.1:{port}\n}}\n{}",
        conf(p_up, free_port(), free_port())
    );
    let d = Daemon::start(&text, &[]);
    // Generous: under a loaded CI host the first report can take a while.
    let v = wait_api(port, 30, |v| v["health"].is_object());
    assert_eq!(v["version"], 1);
    let (head, body) = get(port, "/metrics");
    assert!(head.contains(" 200 "), "{head}");
    assert!(body.contains("ipvsdir_build_info"), "{body}");
    drop(d);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "global_defs {\n metrics_listen localhost\n}\n").unwrap();
    let out = Command::new(common::daemon::BIN)
        .arg("-f")
        .arg(&bad)
        .arg("-t")
        .output()
        .unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad.conf:2:17") && err.contains("metrics_listen needs ADDR:PORT"),
        "{err}"
    );
}
