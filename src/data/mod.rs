//! Records and pools: reading dataset files (JSONL, JSON, Parquet), the known source shapes and
//! column mapping, question keys, writing Parquet, and n-gram decontamination.

pub mod decontam;
pub mod key;
pub mod parquet_io;
pub mod read;
pub mod record;

pub use key::question_key;
