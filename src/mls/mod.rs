//! RFC 9420 glue: reading the public header of an `MLSMessage`
//! ([`message`]), the cipher suites ([`suite`]), the secret tree
//! ([`secret_tree`]), the key schedule / exporter ([`key_schedule`]) and
//! message framing and protection ([`framing`]).

pub mod framing;
pub mod group_info;
pub mod key_schedule;
pub mod message;
pub mod secret_tree;
pub mod suite;
