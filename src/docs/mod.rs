//! The manual pages and shell completions, made from the command line's
//! clap definition (the binary passes it in, so they list the flags it
//! parses) and the configuration page kept beside this file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// ipvsdir.conf(5): kept by hand (roff), short; the README's
/// "Configuration reference" is the long form.
pub const CONF_PAGE: &str = include_str!("ipvsdir.conf.5");

/// Writes ipvsdir(8), from `cmd`, and ipvsdir.conf(5) into `dir` (created
/// if missing); returns the files written.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Administration")
        .source(format!("ipvsdir {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
    let main = dir.join("ipvsdir.8");
    std::fs::write(&main, page)?;
    let conf = dir.join("ipvsdir.conf.5");
    std::fs::write(&conf, CONF_PAGE)?;
    Ok(vec![main, conf])
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(
    mut cmd: clap::Command,
    shell: clap_complete::Shell,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ipvsdir", &mut buf);
    out.write_all(&buf)
}
