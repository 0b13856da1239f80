//! track_file on the VRRP side between real processes in network
//! namespaces (scripts/netns-lab): writing the tracked file drops the
//! master's priority and the backup takes over; restoring it hands back.
//! A weight-0 file in a sync group faults every member. The same values fed
//! to Debian's keepalived 2.2.7 and to ipvsdir give the same priorities and
//! FAULTs (a differential test); so do vrrp_scripts with `reverse` weights
//! (positive, negative and 0), each made to pass or fail by a file. Needs
//! root (fails under
//! CI=true without it, skips elsewhere).

mod common;

use std::time::Duration;

use common::lab::Lab;

const VIP: &str = "10.99.0.200";
const VIP2: &str = "10.99.0.201";
const LONG: Duration = Duration::from_secs(20);

fn instance(name: &str, vrid: u8, prio: u8, extra: &str, vip: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int 1\n  {extra}\n  virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
    )
}

#[test]
fn writing_the_tracked_file_hands_over_and_back() {
    let Some(mut lab) = Lab::up("tfile", 2, &[]) else {
        return;
    };
    let state = lab.path("d1-state");
    // Created by init_file (0: no change) when the daemon starts.
    let d1 = format!(
        "track_file load {{\n  file {}\n  weight -10\n  init_file 0\n}}\n{}",
        state.display(),
        instance("VI_1", 51, 150, "track_file {\n    load\n  }", VIP)
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &instance("VI_1", 51, 100, "", VIP));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert!(lab.has_addr("d1", VIP));
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "0");
    let files = |lab: &Lab| lab.report("d1").map(|r| r.files).unwrap_or_default();
    assert_eq!(files(&lab)[0].name, "load");
    assert_eq!(files(&lab)[0].value, 0);

    // 6 * -10: 150 -> 90, below the backup's 100 (written in place)
    std::fs::write(&state, "6\n").unwrap();
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 90);
    assert_eq!(files(&lab)[0].value, 6);
    assert!(lab.has_addr("d2", VIP));
    assert!(
        lab.log("d1")
            .contains("Changing effective priority from 150 to 90"),
        "{}",
        lab.log("d1")
    );

    // back to 0 by an atomic rename: 150 again, d1 preempts
    let tmp = lab.path("d1-state.tmp");
    std::fs::write(&tmp, "0\n").unwrap();
    std::fs::rename(&tmp, &state).unwrap();
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 150);
    assert!(lab.has_addr("d1", VIP));
}

#[test]
fn a_weight_zero_file_faults_the_whole_sync_group() {
    let Some(mut lab) = Lab::up("tfgrp", 2, &[]) else {
        return;
    };
    let gate = lab.path("d1-gate");
    std::fs::write(&gate, "0").unwrap();
    let d1 = format!(
        "vrrp_track_file gate {{\n  file {}\n}}\n{}{}\
         vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n  track_file {{\n    gate weight 0\n  }}\n}}\n",
        gate.display(),
        instance("VI_1", 51, 150, "", VIP),
        instance("VI_2", 52, 150, "", VIP2),
    );
    let d2 = format!(
        "{}{}",
        instance("VI_1", 51, 100, "", VIP),
        instance("VI_2", 52, 100, "", VIP2)
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &d2);
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_2", "MASTER", LONG);

    // weight 0: a non-zero value is FAULT, for both members
    std::fs::write(&gate, "1").unwrap();
    lab.wait_state("d1", "VI_1", "FAULT", LONG);
    lab.wait_state("d1", "VI_2", "FAULT", LONG);
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_2", "MASTER", LONG);

    // deleted: read as 0, the group comes back and preempts
    std::fs::remove_file(&gate).unwrap();
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_2", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
}

#[test]
fn the_same_values_give_keepalived_s_priorities_and_faults() {
    let Some(mut lab) = Lab::up("tfdiff", 2, &["keepalived"]) else {
        return;
    };
    let conf = |node: &str, vrid: u8| {
        format!(
            "track_file tf {{\n  file {}\n  weight 10 reverse\n}}\n{}",
            lab.path(&format!("{node}-tf")).display(),
            instance(
                "VI_1",
                vrid,
                100,
                "track_file {\n    tf\n  }",
                if vrid == 51 { VIP } else { VIP2 }
            )
        )
    };
    let (k, ours) = (lab.path("d1-tf"), lab.path("d2-tf"));
    let write = |v: Option<i64>| {
        for p in [&k, &ours] {
            match v {
                Some(v) => std::fs::write(p, format!("{v}\n")).unwrap(),
                None => std::fs::remove_file(p).unwrap(),
            }
        }
    };
    write(Some(3));
    let (c1, c2) = (conf("d1", 51), conf("d2", 52));
    lab.start_keepalived("d1", &c1);
    lab.start_ipvsdir("d2", &c2);
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    // Each value, then what keepalived made of it, then ipvsdir the same.
    for v in [
        None,
        Some(3),
        Some(-30),
        Some(26),
        Some(0),
        Some(5),
        None,
        Some(-26),
        Some(2),
    ] {
        if v.is_some() || k.exists() {
            write(v);
        }
        std::thread::sleep(Duration::from_millis(1500));
        let (kstate, kprio) = lab.keepalived_view("d1").expect("keepalived's dump");
        let fault = kstate == "FAULT";
        lab.wait_for(
            &format!("ipvsdir to match keepalived ({kstate}, {kprio}) for {v:?}"),
            Duration::from_secs(5),
            |l| {
                l.instance("d2", "VI_1").is_some_and(|i| {
                    (i.state == "FAULT") == fault
                        && (fault || i.effective_priority == u8::try_from(kprio).unwrap_or(0))
                })
            },
        );
        println!("value {v:?}: keepalived {kstate} {kprio}, ipvsdir the same");
    }
}

/// track_script `reverse` as keepalived 2.2.7 applies it: each script
/// passes while its file exists; every combination of the scripts'
/// results gives keepalived's priority (or FAULT) in ipvsdir too.
#[test]
fn reverse_script_weights_give_keepalived_s_priorities_and_faults() {
    let Some(mut lab) = Lab::up("tsrev", 2, &["keepalived"]) else {
        return;
    };
    // (name, weight) of each script, all tracked with `reverse`.
    let scripts = [("neg", -20), ("pos", 15), ("zero", 0)];
    let conf = |node: &str, vrid: u8| {
        let mut text = String::new();
        for (name, weight) in scripts {
            text.push_str(&format!(
                "vrrp_script {name} {{\n  script \"/bin/sh -c 'test -f {}'\"\n  interval 1\n  weight {weight} reverse\n}}\n",
                lab.path(&format!("{node}-{name}")).display()
            ));
        }
        let track: String = scripts.iter().map(|(n, _)| format!("    {n}\n")).collect();
        text + &instance(
            "VI_1",
            vrid,
            100,
            &format!("track_script {{\n{track}  }}"),
            if vrid == 51 { VIP } else { VIP2 },
        )
    };
    let dir = lab.path("");
    let set = |name: &str, pass: bool| {
        for node in ["d1", "d2"] {
            let p = dir.join(format!("{node}-{name}"));
            if pass {
                std::fs::write(&p, "").unwrap();
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    };
    // The weight-0 script fails at first (reverse: a pass would be FAULT).
    set("neg", true);
    set("pos", true);
    let (c1, c2) = (conf("d1", 51), conf("d2", 52));
    lab.start_keepalived("d1", &c1);
    lab.start_ipvsdir("d2", &c2);
    std::thread::sleep(Duration::from_secs(4));
    for (neg, pos, zero) in [
        (true, true, false),
        (false, true, false),
        (false, false, false),
        (true, false, false),
        (true, true, true),
        (true, true, false),
    ] {
        set("neg", neg);
        set("pos", pos);
        set("zero", zero);
        std::thread::sleep(Duration::from_millis(2500));
        let (kstate, kprio) = lab.keepalived_view("d1").expect("keepalived's dump");
        let fault = kstate == "FAULT";
        lab.wait_for(
            &format!(
                "ipvsdir to match keepalived ({kstate}, {kprio}) for neg {neg} pos {pos} zero {zero}"
            ),
            Duration::from_secs(5),
            |l| {
                l.instance("d2", "VI_1").is_some_and(|i| {
                    (i.state == "FAULT") == fault
                        && (fault || i.effective_priority == u8::try_from(kprio).unwrap_or(0))
                })
            },
        );
        println!("neg {neg} pos {pos} zero {zero}: keepalived {kstate} {kprio}, ipvsdir the same");
    }
}
