//! vad stage (being written).
