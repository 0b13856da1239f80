//! Health checks: the pure per-checker state machine (`state`), the probes
//! (`tcp`, `udp`, `ping`, `dns`, `smtp`, `http`, `misc`, sharing `probe`), a checker ready to probe
//! (`prepared`), and the engine that schedules them and turns results into
//! real-server health for the IPVS table: TCP_CHECK and plain HTTP_GET on
//! the checker thread's event loop (`poller`), the others as tasks.

pub mod dns;
pub mod dns_message;
pub mod engine;
pub mod file;
pub mod genhash;
pub mod health;
pub mod http;
pub mod misc;
pub mod ping;
pub mod poller;
pub mod prepared;
pub mod probe;
pub mod smtp;
pub mod state;
pub mod tcp;
pub mod udp;
