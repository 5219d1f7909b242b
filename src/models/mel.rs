//! Whisper's mel filterbank, computed rather than shipped: librosa's `filters.mel` with
//! `htk=False, norm="slaney"` (the formula behind openai-whisper's `mel_filters.npz`), in f64 and
//! rounded to f32 at the end like numpy does.

/// Whisper's sample rate.
pub(crate) const SAMPLE_RATE: f64 = 16_000.0;
/// Whisper's FFT size.
pub(crate) const N_FFT: usize = 400;

/// Slaney's mel scale: linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `numpy.maximum(0, v)`: keeps `v` unless 0 is strictly greater, so `-0.0` stays `-0.0`. Matching
/// numpy bit for bit keeps the output byte-identical to the reference converter.
fn numpy_max0(v: f64) -> f64 {
    if 0.0 > v { 0.0 } else { v }
}

/// `n_mels` triangular filters over the `n_fft / 2 + 1` FFT bins, row-major
/// (`n_mels × (n_fft/2+1)`), area-normalised (Slaney).
pub(crate) fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    // numpy.fft.rfftfreq
    let bin_hz: Vec<f64> = (0..n_bins)
        .map(|k| k as f64 * (1.0 / (n_fft as f64 * (1.0 / sample_rate))))
        .collect();
    // numpy.linspace over mel, including both ends, then back to Hz
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let step = (hi - lo) / (n_mels + 1) as f64;
    let edges_hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| {
            if i == n_mels + 1 {
                hi
            } else {
                lo + i as f64 * step
            }
        })
        .map(mel_to_hz)
        .collect();

    let mut weights = Vec::with_capacity(n_mels * n_bins);
    for m in 0..n_mels {
        let (left, center, right) = (edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]);
        let norm = 2.0 / (right - left);
        for &f in &bin_hz {
            let rising = -(left - f) / (center - left);
            let falling = (right - f) / (right - center);
            weights.push((numpy_max0(rising.min(falling)) * norm) as f32);
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_filterbank_has_80_non_negative_rows_of_201() {
        let w = mel_filters(SAMPLE_RATE, N_FFT, 80);
        assert_eq!(w.len(), 80 * 201);
        for row in w.chunks(201) {
            assert!(row.iter().all(|&x| x >= 0.0));
            assert!(row.iter().any(|&x| x > 0.0), "every filter covers some bin");
        }
    }

    #[test]
    fn matches_librosa_values() {
        // Reference values: librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) (== openai-whisper
        // mel_filters.npz "mel_80"), computed with the numpy formula of the prototype converter.
        let w = mel_filters(SAMPLE_RATE, N_FFT, 80);
        let at = |m: usize, k: usize| w[m * 201 + k];
        for (m, k, expected) in REFERENCE {
            let got = at(m, k);
            assert!(
                (got - expected).abs() <= 1e-7,
                "w[{m}][{k}] = {got}, librosa {expected}"
            );
        }
        assert!(
            at(0, 0) == 0.0 && at(0, 0).is_sign_negative(),
            "numpy yields -0.0 here"
        );
    }

    const REFERENCE: [(usize, usize, f32); 7] = [
        (0, 1, 0.024_862_595),
        (1, 2, 0.022_871_772),
        (5, 6, 0.014_908_484),
        (10, 11, 0.004_954_375_3),
        (40, 43, 0.014_735_566),
        (79, 192, 0.003_164_711_6),
        (79, 200, 0.0),
    ];
}
