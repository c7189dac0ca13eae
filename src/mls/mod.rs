//! RFC 9420 glue: reading the public header of an `MLSMessage`.

pub mod message;
