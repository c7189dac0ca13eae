//! RFC 9420 glue: reading the public header of an `MLSMessage`
//! ([`message`]), the cipher suites ([`suite`]), the secret tree
//! ([`secret_tree`]) and the key schedule / exporter ([`key_schedule`]).

pub mod key_schedule;
pub mod message;
pub mod secret_tree;
pub mod suite;
