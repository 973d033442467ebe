//! Top-level pages that have no feature module of their own yet. Each becomes a feature module
//! (its types, server functions and components together) once it has behaviour.

pub mod changes;
pub mod fleet;
pub mod not_found;
