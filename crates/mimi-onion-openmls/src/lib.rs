//! mimi-onion for applications built on openmls.
