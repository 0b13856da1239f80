//! The daemon's incremental IPVS path, timed against the real kernel (run in
//! the kernel VM by scripts/bench-ipvs): a full load through
//! `Reconciler::tick`, then one changed weight and one added service through
//! `Reconciler::apply`, which diffs against what it last wrote instead of
//! re-reading the kernel (what `ipvsdir -C` does on every health change).
//!
//!   bench_reconcile FILE

use std::time::Instant;

use ipvsdir::config::{LoadOptions, load};
use ipvsdir::lvs::desired::{AllAlive, QuorumMemory, desired};
use ipvsdir::lvs::kernel::Ipvs;
use ipvsdir::lvs::reconciler::Reconciler;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: bench_reconcile FILE");
        std::process::exit(2);
    };
    let l = load(path.as_ref(), &LoadOptions::default());
    let Some(cfg) = l.config else {
        eprintln!("{}", l.diagnostics);
        std::process::exit(1);
    };
    let want = desired(&cfg, &AllAlive, &mut QuorumMemory::default());
    let ipvs = Ipvs::open().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let mut r = Reconciler::new(ipvs, Default::default());
    let t = Instant::now();
    let full = r.tick(&want).expect("full load");
    let t_full = t.elapsed().as_secs_f64();

    let mut one = want.clone();
    let first = one.services.values_mut().next().expect("a service");
    let d = first.dests.values_mut().next().expect("a dest");
    d.weight += 1;
    let t = Instant::now();
    let weight = r.apply(&one).expect("weight change");
    let t_weight = t.elapsed().as_secs_f64();

    let mut added = one.clone();
    let (key, vs) = added
        .services
        .iter()
        .next()
        .map(|(k, v)| (*k, v.clone()))
        .expect("a service");
    let mut vs = vs;
    let ipvs_sys::ServiceKey::Addr { protocol, addr, .. } = key else {
        panic!("address service expected")
    };
    vs.service.key = ipvs_sys::ServiceKey::Addr {
        protocol,
        addr,
        port: 65000,
    };
    added.services.insert(vs.service.key, vs);
    let t = Instant::now();
    let add = r.apply(&added).expect("service add");
    let t_add = t.elapsed().as_secs_f64();

    println!(
        "reconciler full load {:.4}s ({} ops); one weight {:.6}s ({} ops); one service {:.6}s ({} ops); full/weight {:.0}x; full/service {:.0}x",
        t_full,
        full.applied.len(),
        t_weight,
        weight.applied.len(),
        t_add,
        add.applied.len(),
        t_full / t_weight,
        t_full / t_add
    );
}
