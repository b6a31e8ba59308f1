//! The sandbox cluster: an in-process simulation (filled in below).
