//! Kaldi-compatible log mel filter bank features, as CAM++ was trained on
//! (`torchaudio.compliance.kaldi.fbank` with 80 bins and dither 0).
//!
//! Per frame of 25 ms (400 samples) every 10 ms (160 samples), with the samples scaled to the
//! 16-bit range: the DC offset is removed, pre-emphasis 0.97 applied (the first sample against
//! itself), the Povey window (Hann to the power 0.85) applied, a 512-point power spectrum taken
//! and 80 triangular filters on Kaldi's mel scale (`1127 ln(1 + f/700)`, 20 Hz to 8 kHz) summed;
//! the result is `ln(max(energy, f32::EPSILON))`.
//!
//! Promises:
//! - Frame `j` covers samples `160 j .. 160 j + 400` (no centring, no padding) and depends on
//!   those samples only, so the frames of a window starting on a 10 ms boundary are the frames
//!   of the whole recording at those positions.
//! - Matches the numpy reference (`../shared/prototypes/speaker-campplus/campp_np.py`) to 1e-4
//!   on real audio (tests/campplus.rs). The transform runs in f64: in f32 the weak high bins of
//!   loud frames lose several digits.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Filter bank channels.
pub const N_BINS: usize = 80;
/// Samples per frame: 25 ms.
pub const FRAME_LEN: usize = 400;
/// Samples between frame starts: 10 ms.
pub const FRAME_SHIFT: usize = 160;
/// FFT size: the frame length rounded up to a power of two, as Kaldi does.
const N_FFT: usize = 512;
const SAMPLE_RATE: f64 = 16_000.0;
const LOW_HZ: f64 = 20.0;
const PREEMPHASIS: f64 = 0.97;
/// Kaldi reads 16-bit integers; decoded audio is in −1..1.
const INT16_SCALE: f64 = 32_768.0;

/// How many frames [`KaldiFbank::all_frames`] gives for `n` samples: none for no samples, one
/// (zero-padded) for fewer than a frame's, else [`frame_count`].
pub fn all_frames_count(n: usize) -> usize {
    match n {
        0 => 0,
        n if n < FRAME_LEN => 1,
        n => frame_count(n),
    }
}

/// The frame count Kaldi gives `n` samples (`snip_edges`): 0 below one frame.
pub fn frame_count(n: usize) -> usize {
    if n < FRAME_LEN {
        0
    } else {
        1 + (n - FRAME_LEN) / FRAME_SHIFT
    }
}

/// The filter bank front end; build once, use from any thread.
pub struct KaldiFbank {
    /// The 80 mel filters, each as its first FFT bin and its weights from there. A filter
    /// spans at most a few dozen of the 257 bins; the zeros outside were nine tenths of this
    /// front end's time (perf, speaker stage on 10 min of Spanish: 5.9 % → 0.5 % of its
    /// samples) and add nothing to the sums, which stay bit for bit the same.
    banks: Vec<(usize, Vec<f64>)>,
    /// Povey window.
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl Default for KaldiFbank {
    fn default() -> Self {
        Self::new()
    }
}

impl KaldiFbank {
    /// Precomputes the window, filters and FFT plan.
    pub fn new() -> Self {
        let window = (0..FRAME_LEN)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / (FRAME_LEN - 1) as f64;
                (0.5 - 0.5 * phase.cos()).powf(0.85)
            })
            .collect();
        KaldiFbank {
            banks: mel_banks(),
            window,
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Frames `first..first + count` of `samples` (16 kHz, −1..1), each 80 values, row-major.
    /// Frames reaching past the end of `samples` are not produced.
    pub fn frames(&self, samples: &[f32], first: usize, count: usize) -> Vec<f32> {
        let available = frame_count(samples.len()).saturating_sub(first);
        let count = count.min(available);
        let mut out = Vec::with_capacity(count * N_BINS);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut power = vec![0f64; N_FFT / 2 + 1];
        for j in first..first + count {
            let frame = &samples[j * FRAME_SHIFT..j * FRAME_SHIFT + FRAME_LEN];
            self.frame(frame, &mut input, &mut spectrum, &mut power, &mut out);
        }
        out
    }

    /// Every frame of `samples`; a clip shorter than one frame is zero-padded to one frame
    /// (as the reference does), so any non-empty clip gives at least one frame.
    pub fn all_frames(&self, samples: &[f32]) -> Vec<f32> {
        match all_frames_count(samples.len()) {
            0 => Vec::new(),
            1 if samples.len() < FRAME_LEN => {
                let mut padded = samples.to_vec();
                padded.resize(FRAME_LEN, 0.0);
                self.frames(&padded, 0, 1)
            }
            n => self.frames(samples, 0, n),
        }
    }

    fn frame(
        &self,
        frame: &[f32],
        input: &mut [f64],
        spectrum: &mut [Complex<f64>],
        power: &mut [f64],
        out: &mut Vec<f32>,
    ) {
        let mean =
            frame.iter().map(|&x| f64::from(x)).sum::<f64>() * INT16_SCALE / FRAME_LEN as f64;
        let centred = |i: usize| f64::from(frame[i]) * INT16_SCALE - mean;
        input[0] = centred(0) * (1.0 - PREEMPHASIS) * self.window[0];
        for (i, (x, w)) in input.iter_mut().zip(&self.window).enumerate().skip(1) {
            *x = (centred(i) - PREEMPHASIS * centred(i - 1)) * w;
        }
        input[FRAME_LEN..].iter_mut().for_each(|x| *x = 0.0);
        // The buffers have the lengths the plan asked for, so the transform cannot fail.
        if self.fft.process(input, spectrum).is_err() {
            out.extend(std::iter::repeat_n(f32::EPSILON.ln(), N_BINS));
            return;
        }
        for (p, c) in power.iter_mut().zip(spectrum.iter()) {
            *p = c.norm_sqr();
        }
        let floor = f64::from(f32::EPSILON);
        for (first, weights) in &self.banks {
            let energy: f64 = weights
                .iter()
                .zip(&power[*first..])
                .map(|(w, p)| w * p)
                .sum();
            out.push(energy.max(floor).ln() as f32);
        }
    }
}

fn mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// [`dense_mel_banks`] with each filter cut to its nonzero stretch of bins.
fn mel_banks() -> Vec<(usize, Vec<f64>)> {
    dense_mel_banks()
        .chunks_exact(N_FFT / 2 + 1)
        .map(|row| {
            let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
            let end = row.iter().rposition(|&w| w != 0.0).map_or(first, |i| i + 1);
            (first, row[first..end].to_vec())
        })
        .collect()
}

/// Kaldi's triangular filters, equally spaced on the mel scale from 20 Hz to Nyquist, as
/// `80 × 257` weights over the FFT bins, row-major (the Nyquist column is zero, as in Kaldi).
fn dense_mel_banks() -> Vec<f64> {
    let bins = N_FFT / 2;
    let bin_hz = SAMPLE_RATE / N_FFT as f64;
    let (low, high) = (mel(LOW_HZ), mel(SAMPLE_RATE / 2.0));
    let delta = (high - low) / (N_BINS + 1) as f64;
    let mut banks = vec![0f64; N_BINS * (bins + 1)];
    for (b, row) in banks.chunks_exact_mut(bins + 1).enumerate() {
        let left = low + b as f64 * delta;
        let centre = left + delta;
        let right = centre + delta;
        for (k, w) in row[..bins].iter_mut().enumerate() {
            let m = mel(bin_hz * k as f64);
            let up = (m - left) / (centre - left);
            let down = (right - m) / (right - centre);
            *w = up.min(down).max(0.0);
        }
    }
    banks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_filters_keep_every_nonzero_weight() {
        let dense = dense_mel_banks();
        let cut = mel_banks();
        assert_eq!(cut.len(), N_BINS);
        let mut rebuilt = vec![0f64; dense.len()];
        for (row, (first, weights)) in rebuilt.chunks_exact_mut(N_FFT / 2 + 1).zip(&cut) {
            assert!(
                !weights.is_empty() && weights.len() < 40,
                "{first} {}",
                weights.len()
            );
            row[*first..first + weights.len()].copy_from_slice(weights);
        }
        assert_eq!(rebuilt, dense);
    }

    #[test]
    fn frame_counts_follow_kaldi_snip_edges() {
        assert_eq!(frame_count(399), 0);
        assert_eq!(frame_count(400), 1);
        assert_eq!(frame_count(559), 1);
        assert_eq!(frame_count(560), 2);
        assert_eq!(frame_count(16_000), 98);
    }

    #[test]
    fn a_tone_peaks_in_its_filter_and_windows_match_the_whole() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let fb = KaldiFbank::new();
        let all = fb.all_frames(&tone);
        assert_eq!(all.len(), 98 * N_BINS);
        let frame = &all[10 * N_BINS..11 * N_BINS];
        let peak = (0..N_BINS)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        // 1000 Hz is 1000.0 Kaldi-mel; filter centres lie at 31.75 + 34.67 (b + 1) mel.
        assert_eq!(peak, 27, "{frame:?}");
        // A window's frames are the recording's frames at the same positions.
        assert_eq!(fb.frames(&tone, 10, 5), all[10 * N_BINS..15 * N_BINS]);
        assert_eq!(fb.all_frames(&tone[..100]).len(), N_BINS);
        assert!(fb.all_frames(&[]).is_empty());
    }
}
