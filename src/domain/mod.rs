//! Domain rules: who may do what, what input is valid, in which order they are checked.
pub mod cache;
pub mod error;
pub mod model;
pub mod permission;
pub mod search;
pub mod service;
pub mod validation;
pub mod vault;

pub use error::{Error, Result};
pub use service::Service;
