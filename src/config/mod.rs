//! keepalived.conf: files -> tokens (nom) -> syntax tree with spans ->
//! typed, validated [`model::Config`], with `file:line:col` diagnostics.

pub mod build;
pub mod diag;
pub mod expand;
pub mod keywords;
pub mod lexer;
pub mod model;
pub mod normalized;
pub mod read;
pub mod source;
pub mod text;
pub mod tree;

use std::path::Path;

use diag::{Diagnostics, Severity};
use model::Config;
use source::SourceMap;

/// Options that change how a file is read.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// keepalived's `-i`/`--config-id`: selects `@id` lines and is
    /// `${_INSTANCE}`. None: the host name up to its first dot, as keepalived.
    pub config_id: Option<String>,
    /// keepalived's `-e`/`--all-config`: every `include` is read as
    /// `includet` (a missing or unreadable file is an error).
    pub all_config: bool,
}

/// The outcome of loading: the model when there were no errors, and every
/// diagnostic (warnings and errors) in file order.
#[derive(Debug)]
pub struct Loaded {
    pub config: Option<Config>,
    pub diagnostics: Diagnostics,
}

/// Reads, parses and validates `path` and everything it includes.
pub fn load(path: &Path, opts: &LoadOptions) -> Loaded {
    load_with(opts, |r| r.read(path, None))
}

/// Loads configuration text that has no file of its own (tests, fuzzing).
/// `name` is what diagnostics call it; includes resolve relative to its folder.
pub fn load_str(name: &str, text: &str, opts: &LoadOptions) -> Loaded {
    load_with(opts, |r| {
        r.read_text(
            Path::new(name),
            Path::new(name).to_path_buf(),
            text.to_string(),
        )
    })
}

fn load_with(opts: &LoadOptions, read: impl FnOnce(&mut read::Reader)) -> Loaded {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let mut reader = read::Reader::new(&mut sources, &mut diags, opts.config_id.as_deref());
    if opts.all_config {
        reader.check_all_includes();
    }
    read(&mut reader);
    let (mut nodes, errors) = reader.finish();
    for e in errors {
        diags.push(&sources, Severity::Error, e.span, e.message);
    }
    let config = build::build(
        &mut build::Ctx {
            sources: &sources,
            diags: &mut diags,
            smtp_defaults: Default::default(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
        },
        &mut nodes,
    );
    drop(nodes);
    let config = (!diags.has_errors()).then_some(config);
    Loaded {
        config,
        diagnostics: diags,
    }
}
