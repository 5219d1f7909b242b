//! pipeline stage (being written).
