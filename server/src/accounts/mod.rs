//! Accounts: users, passwords, sessions, sign-in throttling and two-factor. [`service`] is the
//! account service behind the app's server functions; [`sessions`] owns the session cookie and
//! table; [`throttle`] the failed-sign-in counters. The primitives know nothing of the database or
//! HTTP: [`password`] (policy and argon2id hashing) and [`totp`] (authenticator and recovery codes).

pub mod password;
pub mod rows;
pub mod service;
pub mod sessions;
pub mod throttle;
pub mod totp;
