//! s1-studio: curate, fine-tune and run reasoning models under a thinking budget (the s1 recipe).
//!
//! The library holds every capability; the binary (`src/main.rs`) only parses the command line.

// Bad input is an error naming what is wrong, never a panic: no unwrap or expect outside tests
// (clippy.toml allows them in tests).
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod cancel;
pub mod cli;
pub mod curate;
pub mod data;
pub mod eval;
pub mod generate;
pub mod grade;
pub mod hub;
pub mod jobs;
pub mod model;
pub mod pytext;
pub mod serve;
pub mod train;
#[cfg(feature = "gui")]
pub mod ui;
pub mod workspace;
