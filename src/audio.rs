//! audio stage (being written).
