//! The benchmarks, one module each.

pub mod checks;
pub mod ingestion;
pub mod passthrough;
pub mod retrieval;
pub mod streams;
pub mod traces;
pub mod turns;
pub mod vectors;
