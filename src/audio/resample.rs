//! Streaming conversion of a mono signal at any sample rate to 16 kHz.
//!
//! Promises:
//! - Input is fed in pieces of any length; only one resampler chunk (about 1024 source frames)
//!   plus the piece being fed is held at the source rate, so memory does not grow with the
//!   length of the recording.
//! - No start delay: the resampler's own latency is dropped from the front of the output, so a
//!   sound at `t` seconds in the source is at `t` seconds in the output.
//! - Exact length: a source of `n` frames at `r` Hz yields `round(n * 16000 / r)` frames.
//! - At 16 kHz the samples pass through untouched.

use rubato::audioadapter_buffers::SizeError;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Fft, FixedSync, Indexing, ResampleError, Resampler, ResamplerConstructionError, WindowFunction,
};

use super::SAMPLE_RATE;

/// Target length of one FFT block at the source rate, in frames. The anti-aliasing filter is as
/// long as the block, so 1024 frames (21 ms at 48 kHz) keeps the pass band flat to about 7.7 kHz
/// while the latency we have to compensate stays around 10 ms.
const FFT_BLOCK_FRAMES: usize = 1024;

/// Why the 16 kHz conversion failed. None of these happen for valid rates; they exist so a bug
/// or an absurd header becomes an error message instead of a panic.
#[derive(Debug, thiserror::Error)]
pub enum ResampleFailure {
    /// The resampler could not be built for this rate (e.g. 0 Hz).
    #[error("cannot set up the resampler: {0}")]
    Setup(#[from] ResamplerConstructionError),
    /// A chunk could not be processed.
    #[error("resampling failed: {0}")]
    Process(#[from] ResampleError),
    /// A buffer had the wrong size for the resampler.
    #[error("resampler buffer has the wrong size: {0}")]
    Buffer(#[from] SizeError),
}

/// Converts a mono stream at `source_rate` to 16 kHz, appending to a caller-owned vector.
pub(crate) struct To16k {
    fft: Option<FftStage>,
    source_frames: u64,
    source_rate: u32,
}

/// The resampling part of [`To16k`]; absent when the source is already 16 kHz.
struct FftStage {
    resampler: Fft<f32>,
    /// Source-rate samples not yet resampled (less than one chunk between calls).
    pending: Vec<f32>,
    /// Scratch output for one chunk.
    chunk_out: Vec<f32>,
    /// Output frames still to drop from the front to cancel the resampler latency.
    delay_left: usize,
    /// Frames appended to the output so far (after the delay was dropped).
    produced: u64,
}

impl To16k {
    /// A converter for a mono stream at `source_rate` Hz.
    pub(crate) fn new(source_rate: u32) -> Result<Self, ResampleFailure> {
        let fft = if source_rate == SAMPLE_RATE {
            None
        } else {
            Some(FftStage::new(source_rate)?)
        };
        Ok(Self {
            fft,
            source_frames: 0,
            source_rate,
        })
    }

    /// Feeds `mono` (source rate) and appends whatever 16 kHz output is ready to `out`.
    pub(crate) fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleFailure> {
        self.source_frames += mono.len() as u64;
        match &mut self.fft {
            None => {
                out.extend_from_slice(mono);
                Ok(())
            }
            Some(stage) => stage.push(mono, out),
        }
    }

    /// Flushes the resampler and appends the tail, so the total output has exactly
    /// `round(source_frames * 16000 / source_rate)` frames.
    pub(crate) fn finish(self, out: &mut Vec<f32>) -> Result<(), ResampleFailure> {
        let expected = expected_output_frames(self.source_frames, self.source_rate);
        match self.fft {
            None => Ok(()),
            Some(stage) => stage.finish(expected, out),
        }
    }

    /// Source-rate frames fed so far.
    pub(crate) fn source_frames(&self) -> u64 {
        self.source_frames
    }
}

/// `round(frames * 16000 / rate)`, in integers so hours of audio do not drift.
pub(crate) fn expected_output_frames(frames: u64, rate: u32) -> u64 {
    let rate = u128::from(rate.max(1));
    let scaled = u128::from(frames) * u128::from(SAMPLE_RATE);
    u64::try_from((scaled + rate / 2) / rate).unwrap_or(u64::MAX)
}

impl FftStage {
    fn new(source_rate: u32) -> Result<Self, ResampleFailure> {
        // Fixed input and output chunk sizes are the cheapest mode for a fixed ratio; one
        // sub-chunk per chunk makes the FFT block (and hence the filter) FFT_BLOCK_FRAMES long.
        let resampler = Fft::<f32>::new_custom(
            source_rate as usize,
            SAMPLE_RATE as usize,
            FFT_BLOCK_FRAMES,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )?;
        let delay_left = resampler.output_delay();
        let chunk_out = vec![0.0; resampler.output_frames_max()];
        let pending = Vec::with_capacity(resampler.input_frames_max() * 2);
        Ok(Self {
            resampler,
            pending,
            chunk_out,
            delay_left,
            produced: 0,
        })
    }

    fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleFailure> {
        self.pending.extend_from_slice(mono);
        let chunk = self.resampler.input_frames_next();
        let mut start = 0;
        while self.pending.len() - start >= chunk {
            self.process_chunk(start, None, out)?;
            start += chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Resamples one chunk starting at `pending[start]`; `partial` is how many of its frames are
    /// real (the rest read as silence), used to flush the tail.
    fn process_chunk(
        &mut self,
        start: usize,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(), ResampleFailure> {
        let available = self.pending.len() - start;
        let input = InterleavedSlice::new(&self.pending[start..], 1, available)?;
        let frames_out = self.chunk_out.len();
        let mut output = InterleavedSlice::new_mut(&mut self.chunk_out, 1, frames_out)?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, written) =
            self.resampler
                .process_into_buffer(&input, &mut output, Some(&indexing))?;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        let fresh = &self.chunk_out[skip..written];
        // The sinc-shaped filter can overshoot full-scale input slightly; keep the [-1, 1] promise.
        out.extend(fresh.iter().map(|s| s.clamp(-1.0, 1.0)));
        self.produced += fresh.len() as u64;
        Ok(())
    }

    fn finish(mut self, expected: u64, out: &mut Vec<f32>) -> Result<(), ResampleFailure> {
        let base = out.len() as u64 - self.produced;
        // The last real frames, padded with silence by the resampler.
        if !self.pending.is_empty() {
            let real = self.pending.len();
            self.process_chunk(0, Some(real), out)?;
            self.pending.clear();
        }
        // Pump silence until the delayed tail of the signal has come out.
        while self.produced < expected {
            self.process_chunk(0, Some(0), out)?;
        }
        let keep = usize::try_from(base + expected).unwrap_or(usize::MAX);
        out.truncate(keep);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(rate: u32, input: &[f32], piece: usize) -> Vec<f32> {
        let mut conv = To16k::new(rate).unwrap();
        let mut out = Vec::new();
        for part in input.chunks(piece) {
            conv.push(part, &mut out).unwrap();
        }
        conv.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn expected_frames_rounds_and_does_not_overflow() {
        assert_eq!(expected_output_frames(48_000, 48_000), 16_000);
        assert_eq!(expected_output_frames(44_100, 44_100), 16_000);
        assert_eq!(expected_output_frames(1, 48_000), 0);
        assert_eq!(expected_output_frames(2, 48_000), 1);
        assert_eq!(expected_output_frames(11_025, 22_050), 8_000);
        // 10 hours at 192 kHz
        assert_eq!(
            expected_output_frames(192_000 * 36_000, 192_000),
            16_000 * 36_000
        );
    }

    #[test]
    fn passthrough_at_16k() {
        let input: Vec<f32> = (0..1000).map(|i| (i as f32 / 1000.0) - 0.5).collect();
        assert_eq!(convert(16_000, &input, 333), input);
    }

    #[test]
    fn length_is_exact_for_common_rates_and_piece_sizes() {
        for rate in [
            8_000, 11_025, 22_050, 24_000, 32_000, 44_100, 48_000, 96_000,
        ] {
            for n in [0usize, 1, 17, 999, 4_410, 48_001] {
                for piece in [1usize, 960, 4096] {
                    if piece == 1 && n > 5_000 {
                        continue;
                    }
                    let input = vec![0.1f32; n];
                    let out = convert(rate, &input, piece);
                    assert_eq!(
                        out.len() as u64,
                        expected_output_frames(n as u64, rate),
                        "rate {rate} n {n} piece {piece}"
                    );
                }
            }
        }
    }

    #[test]
    fn piece_size_does_not_change_the_result() {
        let input: Vec<f32> = (0..30_000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let a = convert(44_100, &input, 441);
        let b = convert(44_100, &input, 10_000);
        assert_eq!(a.len(), b.len());
        let max_diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(max_diff < 1e-5, "max diff {max_diff}");
    }

    #[test]
    fn click_keeps_its_time() {
        for rate in [8_000u32, 22_050, 44_100, 48_000] {
            let n = rate as usize; // 1 s
            let click_at = n * 37 / 100; // 0.37 s
            let mut input = vec![0.0f32; n];
            input[click_at] = 1.0;
            let out = convert(rate, &input, 1000);
            let peak = out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .map(|(i, _)| i)
                .unwrap();
            let expected = 0.37 * SAMPLE_RATE as f64;
            let err_ms = (peak as f64 - expected).abs() / 16.0;
            assert!(
                err_ms <= 0.125,
                "rate {rate}: peak at {peak}, expected {expected}"
            );
        }
    }
}
