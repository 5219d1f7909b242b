//! Transcript exporters (being written).
