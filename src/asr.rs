//! asr stage (being written).
