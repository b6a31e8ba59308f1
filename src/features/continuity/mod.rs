//! Business continuity during an incident: which services are affected (named, or pulled in
//! through their dependencies), what that means against their RTO and RPO, and the text
//! operators read about it. The catalog and plan themselves are data (`crate::catalog`).

pub mod decide;
pub mod impact;
pub mod view;

#[cfg(test)]
mod tests;
