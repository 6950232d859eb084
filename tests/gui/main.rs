//! The window's tests, in one test binary: each module drives `StudioApp` headless through
//! egui_kittest (most render with wgpu on Mesa's lavapipe). One binary instead of one per file:
//! the egui, kittest and wgpu code they instantiate is compiled and linked once, not fifteen
//! times. Run one file's tests with `cargo test --profile ci --test gui chat::`.
//! The GUI tests that set environment variables (gui_paths, gui_quickstart, gui_train_export,
//! gui_train_ssh) stay binaries of their own: tests in one binary share a process.

#[path = "../common/mod.rs"]
mod common;

mod chat;
mod chat_serve;
mod curate;
mod curate_table;
mod device;
mod eval;
mod first_run_snapshot;
mod map_splat;
mod models;
mod pool_map;
mod shell;
mod snapshot;
mod thinking;
mod train;
mod train_memory;
