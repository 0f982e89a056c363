//! Integration tests of the data crate, in one binary: sources, datasets, batching, entropies.

mod batch;
mod dataset;
mod entropy;
mod sources;
