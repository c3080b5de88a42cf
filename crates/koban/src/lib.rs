//! The pieces of the `koban` command that tests drive directly: rule loading, the
//! hunt pipeline, output formats and configuration.

pub mod config;
pub mod hunt;
pub mod output;
pub mod rules;
pub mod serve;
