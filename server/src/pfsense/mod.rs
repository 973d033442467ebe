//! pfSense's configuration as Mudmap understands it: [`xml`] reads and writes `config.xml` as an
//! order-preserving tree (the subset of XML pfSense uses), and [`model`] reads the sections people
//! manage from it — rules, separators, aliases, NAT, interfaces and VLANs, gateways, routes, users,
//! groups, packages, system settings — as typed records shared by diff, search and the editors.
//!
//! [`diff`] words the differences between two configurations, [`raw_diff`] lines them up as text
//! and [`secrets`] masks what must not be shown; [`edit`] makes the edits change sets are made of.
//!
//! The tree is the source of truth, so nothing the model does not understand is ever dropped or
//! reordered. No I/O here: the configuration comes from the agent's `config.get`.

pub mod diff;
pub mod edit;
pub mod model;
pub mod raw_diff;
pub mod secrets;
pub mod xml;

pub use model::{Config, ConfigError};

#[cfg(test)]
mod tests;
