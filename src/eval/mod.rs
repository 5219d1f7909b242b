//! Evaluation against references: diarization error rate and the RTTM/UEM files it reads.
//! (Placeholder on the `der` branch; the lead merges it with the word-error-rate module.)

pub mod der;
pub mod rttm;
