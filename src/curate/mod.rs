//! Curation (S1_RECIPE.md §1): from a question pool to an s1K-style selection, over a workspace
//! (src/workspace): import, the quality rules, decontamination, traces and their lengths,
//! difficulty attempts, domains, the seeded s1 sampler and its ablations, export and the funnel.

pub mod annotate;
pub mod backend;
pub mod classify;
pub mod decontam;
pub mod export;
pub mod funnel;
pub mod import;
pub mod judge;
pub mod pyrepr;
pub mod quality;
pub mod rules;
pub mod scan;
pub mod select;
pub mod selection;
pub mod snapshot;
pub mod sources;
