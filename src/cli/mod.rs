//! The command line, one file per command. Each command's file holds its arguments and its
//! body; `args` holds the argument groups several commands share, `common` the helpers.

pub mod args;
pub mod batch;
pub mod common;
pub mod diarize;
pub mod eval;
pub mod models;
pub mod review;
pub mod speakers;
pub mod themes;
pub mod transcribe;
