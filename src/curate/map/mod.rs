//! The pool's map: a vector per question (embed.rs: hashed TF-IDF with a random projection; a
//! model's hidden states later), a seeded 2D layout of those vectors (knn.rs, layout.rs), the
//! grid index that answers hover and box selection on the CPU (grid.rs), and the coverage
//! figure of a selection (coverage.rs). The workspace step that computes and stores them is
//! `steps::map`; the drawing is the UI's (src/ui/pool_map_*.rs, shaders/).

pub mod coverage;
pub mod embed;
pub mod grid;
pub mod knn;
pub mod layout;
