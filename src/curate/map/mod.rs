//! The pool's map: a vector per question (embed.rs: hashed TF-IDF with a random projection;
//! model_embed.rs: a model's mean last hidden state), a seeded 2D layout of those vectors
//! (knn.rs, layout.rs), the grid index that answers hover and box and lasso selection on the
//! CPU (grid.rs), and the coverage figure of a selection (coverage.rs). The workspace step that
//! computes and stores them is `steps::map` (steps::map_model for a model's vectors); the
//! drawing is the UI's (src/ui/pool_map_*.rs, shaders/).

pub mod coverage;
pub mod embed;
pub mod grid;
pub mod knn;
pub mod layout;
pub mod model_embed;
pub mod nearest;
