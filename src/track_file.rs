//! Tracked files (`track_file` blocks): reading a file's value as
//! keepalived does, `init_file`, and the inotify watch that reports each
//! change. This is the edge; what a value means (priority, FAULT, a real
//! server down or its weight) is decided by the cores
//! ([`crate::vrrp::track::file_effect`], [`crate::check::file::judge`]).
//!
//! The parent directory is watched, not the file, so that every way of
//! changing it is seen: written in place (`echo 5 > file`, reported when
//! the writer closes it), replaced by a rename (editors, `mv tmp file`),
//! created later, deleted (the value is then 0). A directory that does not
//! exist (yet) is polled once a second instead.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use inotify::{EventMask, EventStream, Inotify, WatchMask};

use crate::config::model::TrackFile;

/// How often a file whose directory cannot be watched is read.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("track_file {name}: cannot write init_file {path}: {source}")]
    Init {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("track_file {name}: cannot watch {dir}: {source}")]
    Watch {
        name: String,
        dir: PathBuf,
        source: io::Error,
    },
}

/// The number at the start of the file's text, as keepalived reads it
/// (strtol): leading white space, an optional sign, decimal digits; what
/// follows is ignored; no number at all is 0. Saturates at the i64 range.
pub fn parse_value(text: &str) -> i64 {
    let t = text.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        v = v.saturating_mul(10);
        v = if neg {
            v.saturating_sub(d)
        } else {
            v.saturating_add(d)
        };
    }
    v
}

/// The file's value now: 0 when it does not exist or cannot be read (said
/// in the log, except for a missing file, which is an ordinary state).
pub fn read_value(name: &str, path: &Path) -> i64 {
    // A value is a few bytes: read at most a page, whatever the file is.
    use std::io::Read;
    let mut buf = Vec::with_capacity(64);
    let res = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut buf));
    match res {
        Ok(_) => parse_value(&String::from_utf8_lossy(&buf)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => {
            tracing::warn!(
                "track_file {name}: cannot read {}: {e}; taken as 0",
                path.display()
            );
            0
        }
    }
}

/// `init_file [VALUE] [overwrite]`: writes VALUE when the file does not
/// exist, or always with `overwrite` (atomically: a reader never sees a
/// half-written file).
pub fn init_file(def: &TrackFile) -> Result<(), Error> {
    let Some(init) = def.init else {
        return Ok(());
    };
    if !init.overwrite && def.path.exists() {
        return Ok(());
    }
    let err = |source| Error::Init {
        name: def.name.clone(),
        path: def.path.clone(),
        source,
    };
    let dir = def
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    io::Write::write_all(&mut tmp, format!("{}\n", init.value).as_bytes()).map_err(err)?;
    tmp.persist(&def.path).map_err(|e| err(e.error))?;
    tracing::info!(
        "track_file {}: init_file wrote {} to {}",
        def.name,
        init.value,
        def.path.display()
    );
    Ok(())
}

/// `init_file` of every track_file block (at start and at each reload, as
/// keepalived); a failure is logged and the file is read as it is.
pub fn init_all(config: &crate::config::model::Config) {
    for def in &config.track_files {
        if let Err(e) = init_file(def) {
            tracing::error!("{e}");
        }
    }
}

enum Source {
    Inotify(EventStream<Vec<u8>>),
    Poll(tokio::time::Interval),
}

/// A watched file and its last value.
pub struct Watch {
    name: String,
    path: PathBuf,
    file_name: OsString,
    source: Source,
    value: i64,
}

impl Watch {
    /// Starts watching `path` (before the first read, so that no change is
    /// missed) and reads its value. A directory that cannot be watched is
    /// polled (the error is returned beside the watch, for the log).
    pub fn open(name: &str, path: &Path) -> (Watch, Option<Error>) {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let (source, error) = match Self::inotify(&dir) {
            Ok(s) => (Source::Inotify(s), None),
            Err(source) => (
                Self::poll(),
                Some(Error::Watch {
                    name: name.to_string(),
                    dir,
                    source,
                }),
            ),
        };
        let w = Watch {
            name: name.to_string(),
            file_name: path.file_name().map(OsString::from).unwrap_or_default(),
            path: path.to_path_buf(),
            source,
            value: read_value(name, path),
        };
        (w, error)
    }

    fn inotify(dir: &Path) -> io::Result<EventStream<Vec<u8>>> {
        let inotify = Inotify::init()?;
        inotify.watches().add(
            dir,
            WatchMask::CLOSE_WRITE
                | WatchMask::MOVED_TO
                | WatchMask::MOVED_FROM
                | WatchMask::DELETE
                | WatchMask::DELETE_SELF
                | WatchMask::MOVE_SELF,
        )?;
        inotify.into_event_stream(vec![0u8; 4096])
    }

    fn poll() -> Source {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Source::Poll(tick)
    }

    /// The value last read.
    pub fn value(&self) -> i64 {
        self.value
    }

    /// Waits until the value changes; returns the new one.
    pub async fn changed(&mut self) -> i64 {
        loop {
            let reread = match &mut self.source {
                Source::Inotify(stream) => match stream.next().await {
                    Some(Ok(ev)) => {
                        if ev.mask.intersects(
                            EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED,
                        ) {
                            tracing::warn!(
                                "track_file {}: the directory of {} went away; polling it every {}s",
                                self.name,
                                self.path.display(),
                                POLL.as_secs()
                            );
                            self.source = Self::poll();
                            true
                        } else {
                            ev.mask.contains(EventMask::Q_OVERFLOW)
                                || ev.name.as_deref() == Some(self.file_name.as_os_str())
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(
                            "track_file {}: inotify: {e}; polling {} every {}s",
                            self.name,
                            self.path.display(),
                            POLL.as_secs()
                        );
                        self.source = Self::poll();
                        true
                    }
                    None => {
                        self.source = Self::poll();
                        true
                    }
                },
                Source::Poll(tick) => {
                    tick.tick().await;
                    true
                }
            };
            if !reread {
                continue;
            }
            let v = read_value(&self.name, &self.path);
            if v != self.value {
                self.value = v;
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::InitFile;

    #[test]
    fn values_read_as_keepalived() {
        assert_eq!(parse_value("5\n"), 5);
        assert_eq!(parse_value("  -12 apples"), -12);
        assert_eq!(parse_value("+7"), 7);
        assert_eq!(parse_value(""), 0);
        assert_eq!(parse_value("abc"), 0);
        assert_eq!(parse_value("99999999999999999999999"), i64::MAX);
        assert_eq!(parse_value("-99999999999999999999999"), i64::MIN);
    }

    #[test]
    fn init_file_writes_once_or_always() {
        let dir = tempfile::tempdir().unwrap();
        let mut def = TrackFile {
            name: "t".into(),
            path: dir.path().join("v"),
            weight: 1,
            reverse: false,
            init: Some(InitFile {
                value: 3,
                overwrite: false,
            }),
        };
        init_file(&def).unwrap();
        assert_eq!(read_value("t", &def.path), 3);
        std::fs::write(&def.path, "9").unwrap();
        init_file(&def).unwrap();
        assert_eq!(read_value("t", &def.path), 9, "kept without overwrite");
        def.init = Some(InitFile {
            value: -4,
            overwrite: true,
        });
        init_file(&def).unwrap();
        assert_eq!(read_value("t", &def.path), -4);
        assert_eq!(read_value("t", &dir.path().join("none")), 0);
    }

    #[tokio::test]
    async fn every_way_of_changing_the_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (mut w, err) = Watch::open("t", &path);
        assert!(err.is_none());
        assert_eq!(w.value(), 0);
        async fn next(w: &mut Watch) -> i64 {
            tokio::time::timeout(Duration::from_secs(5), w.changed())
                .await
                .unwrap()
        }
        // created later
        std::fs::write(&path, "5\n").unwrap();
        assert_eq!(next(&mut w).await, 5);
        // rewritten in place
        std::fs::write(&path, "7").unwrap();
        assert_eq!(next(&mut w).await, 7);
        // replaced by a rename
        let tmp = dir.path().join("tmp");
        std::fs::write(&tmp, "-3").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(next(&mut w).await, -3);
        // deleted
        std::fs::remove_file(&path).unwrap();
        assert_eq!(next(&mut w).await, 0);
    }
}
