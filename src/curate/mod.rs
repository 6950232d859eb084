//! Curation (S1_RECIPE.md §1): from a question pool to an s1K-style selection, over a workspace
//! (src/workspace). The steps a front-end runs on a workspace (import, rules, decontamination,
//! traces, attempts, domains, selection, export, marks) are in [`steps`], behind one
//! [`steps::run`]; beside it are the algorithms they apply and what they share: the quality rules
//! and their stored configuration, s1's sampler, the judge and classification protocols, the
//! funnel, the model backends.

pub mod backend;
pub mod classify;
pub mod funnel;
pub mod judge;
pub mod map;
pub mod pyrepr;
pub mod quality;
pub mod rule_config;
pub mod scan;
pub mod select;
pub mod sources;
pub mod steps;
