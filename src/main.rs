//! The `s1-studio` binary: parses the command line and hands over to the library.

#![warn(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    // candle asks num_cpus for its thread count on every parallel op unless this is set, which
    // reads /proc each time; fix it once.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let cli = s1_studio::cli::Cli::parse();
    // A closed pipe (`s1-studio curate report | head`) ends the text-printing commands quietly,
    // as other Unix tools do, instead of a panic in println!. Only those: the others write to
    // child processes' pipes, where an error is better than a signal (sockets are not affected:
    // std sends with MSG_NOSIGNAL).
    #[cfg(unix)]
    if cli.prints_text() {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // candle's CPU elementwise ops run on a pool of its own whose threads spin 25,000 times
    // before sleeping; in a training step, between the rayon-parallel products, those spinning
    // threads take the cores the products need (measured on 2 cores: a step 1.44 s -> 1.30 s
    // with 100 spins). Decoding prefers the spinning (it is 9% faster with it), so only training
    // commands lower it. Set before any thread exists.
    if cli.trains() && std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "100");
    }
    if cli.trains() {
        s1_studio::train::alloc::one_heap_for_all_threads();
    }
    match s1_studio::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
