//! Diarization error rate (DER), computed exactly as `pyannote.metrics.diarization.
//! DiarizationErrorRate` (pyannote.metrics 4.x) does, but on exact segment boundaries.
//!
//! Promises, per recording (uri):
//! - **Evaluated region.** The UEM segments of that uri (their union) when a UEM is given; without
//!   one, the extent of reference ∪ hypothesis (first start to last end), which is what pyannote
//!   does when `uem` is `None`. From that region we remove a collar centred on every reference
//!   turn boundary, `collar_s` wide in total (±`collar_s`/2), as pyannote's `collar` does. (NIST
//!   md-eval's `-c` is one-sided: md-eval `-c 0.25` equals `collar_s = 0.5` here.) With
//!   `skip_overlap`, regions where two or more reference turns overlap are removed as well.
//! - **Components.** The region is cut at every boundary; in each piece of duration `d` with
//!   `n_ref` reference and `n_hyp` hypothesis turns active: total += `n_ref·d`, missed +=
//!   `max(0, n_ref − n_hyp)·d`, false alarm += `max(0, n_hyp − n_ref)·d`, confusion +=
//!   `(min(n_ref, n_hyp) − n_correct)·d`. `n_correct` counts reference turns whose speaker is the
//!   one the active hypothesis turns are mapped to, under the one-to-one speaker mapping that
//!   maximises total co-occurrence time (Hungarian algorithm), computed inside the evaluated
//!   region. Overlapping speech is scored unless `skip_overlap` is set.
//! - **Turns** shorter than 1 µs are ignored, as pyannote ignores "empty" segments. Two turns of
//!   the same speaker that overlap count twice, as pyannote counts them (one track each).
//! - **Which uris are scored.** Every uri of the reference. A uri that only the hypothesis has is
//!   scored (all false alarm) only when a UEM is given and covers it; without a UEM it is not
//!   reported, because there is no evaluated region to hold it to. A reference uri that a given
//!   UEM does not list has an empty evaluated region: it is reported with every component zero.
//! - **Empty reference.** When `total_s` is 0, [`DerReport::der`] is 0 if there is no error and 1
//!   otherwise (pyannote's convention), so a hypothesis talking over silence scores 100 %.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rttm::{Turn, UemSegment};

/// Pieces of time shorter than this are "empty" to pyannote.core (`SEGMENT_PRECISION`); we drop
/// them too so that zero-length turns create no collars and no sliver regions.
const SEGMENT_PRECISION_S: f64 = 1e-6;

/// How diarization error is scored.
#[derive(Debug, Clone, PartialEq)]
pub struct DerOptions {
    /// Total width in seconds of the no-score collar centred on each reference boundary
    /// (pyannote convention: ±`collar_s`/2). 0 (or less) scores everything.
    pub collar_s: f64,
    /// Leave regions where reference speakers overlap out of the evaluation.
    pub skip_overlap: bool,
}

impl Default for DerOptions {
    /// No collar, overlap scored: the strictest setting.
    fn default() -> Self {
        DerOptions {
            collar_s: 0.0,
            skip_overlap: false,
        }
    }
}

/// Diarization error components of one recording, or summed over several, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DerReport {
    /// Reference speech time, counting each overlapping speaker separately.
    pub total_s: f64,
    /// Reference speech time with too few hypothesis speakers.
    pub missed_s: f64,
    /// Hypothesis speech time with too few reference speakers.
    pub false_alarm_s: f64,
    /// Time attributed to the wrong speaker under the optimal mapping.
    pub confusion_s: f64,
    /// Each hypothesis speaker active in the evaluated region, with the reference speaker it is
    /// mapped to (`None`: it shares no time with any unmapped reference speaker). Sorted by
    /// hypothesis label. Empty in a [`total`] over several recordings.
    pub mapping: Vec<(String, Option<String>)>,
}

impl DerReport {
    /// Missed + false alarm + confusion, in seconds.
    pub fn error_s(&self) -> f64 {
        self.missed_s + self.false_alarm_s + self.confusion_s
    }

    /// (missed + false alarm + confusion) / total, as a fraction (1.0 = 100 %). With no reference
    /// speech: 0 if there is no error, else 1, as pyannote does.
    pub fn der(&self) -> f64 {
        let error = self.error_s();
        if self.total_s == 0.0 {
            return if error == 0.0 { 0.0 } else { 1.0 };
        }
        error / self.total_s
    }
}

/// Scores `hypothesis` against `reference`, per uri (see the module docs for the definitions).
pub fn diarization_error(
    reference: &[Turn],
    hypothesis: &[Turn],
    uem: Option<&[UemSegment]>,
    opts: &DerOptions,
) -> BTreeMap<String, DerReport> {
    let reference_by_uri = group_turns(reference);
    let hypothesis_by_uri = group_turns(hypothesis);
    let uem_by_uri = uem.map(group_uem);

    let mut uris: Vec<&str> = reference_by_uri.keys().copied().collect();
    if let Some(uem_by_uri) = &uem_by_uri {
        uris.extend(
            hypothesis_by_uri
                .keys()
                .filter(|uri| uem_by_uri.contains_key(*uri)),
        );
    }
    uris.sort_unstable();
    uris.dedup();

    let no_turns = Vec::new();
    uris.into_iter()
        .map(|uri| {
            let reference = reference_by_uri.get(uri).unwrap_or(&no_turns);
            let hypothesis = hypothesis_by_uri.get(uri).unwrap_or(&no_turns);
            let base_region = match &uem_by_uri {
                Some(uem_by_uri) => uem_by_uri.get(uri).cloned().unwrap_or_default(),
                None => extent(reference, hypothesis),
            };
            let report = score_recording(reference, hypothesis, base_region, opts);
            (uri.to_string(), report)
        })
        .collect()
}

/// Sums the components of several recordings (pyannote's accumulated `abs(metric)`); the
/// per-recording speaker mappings are not carried over.
pub fn total(reports: &BTreeMap<String, DerReport>) -> DerReport {
    let mut sum = DerReport::default();
    for report in reports.values() {
        sum.total_s += report.total_s;
        sum.missed_s += report.missed_s;
        sum.false_alarm_s += report.false_alarm_s;
        sum.confusion_s += report.confusion_s;
    }
    sum
}

/// A half-open time interval `[start, end)` in seconds.
type Interval = (f64, f64);

/// Turns per uri, without the ones pyannote would consider empty.
fn group_turns(turns: &[Turn]) -> BTreeMap<&str, Vec<&Turn>> {
    let mut by_uri: BTreeMap<&str, Vec<&Turn>> = BTreeMap::new();
    for turn in turns {
        if turn.end_s - turn.start_s > SEGMENT_PRECISION_S {
            by_uri.entry(turn.uri.as_str()).or_default().push(turn);
        }
    }
    by_uri
}

fn group_uem(uem: &[UemSegment]) -> BTreeMap<&str, Vec<Interval>> {
    let mut by_uri: BTreeMap<&str, Vec<Interval>> = BTreeMap::new();
    for segment in uem {
        by_uri
            .entry(segment.uri.as_str())
            .or_default()
            .push((segment.start_s, segment.end_s));
    }
    by_uri
}

/// pyannote's stand-in for a missing UEM: one interval from the first start to the last end.
fn extent(reference: &[&Turn], hypothesis: &[&Turn]) -> Vec<Interval> {
    let turns = reference.iter().chain(hypothesis);
    let start = turns
        .clone()
        .map(|t| t.start_s)
        .fold(f64::INFINITY, f64::min);
    let end = turns.map(|t| t.end_s).fold(f64::NEG_INFINITY, f64::max);
    if end - start > SEGMENT_PRECISION_S {
        vec![(start, end)]
    } else {
        Vec::new()
    }
}

fn score_recording(
    reference: &[&Turn],
    hypothesis: &[&Turn],
    base_region: Vec<Interval>,
    opts: &DerOptions,
) -> DerReport {
    let region = evaluated_region(base_region, reference, opts);
    let ref_labels = Labels::of(reference);
    let hyp_labels = Labels::of(hypothesis);
    let pieces = sweep(reference, &ref_labels, hypothesis, &hyp_labels, &region);

    let mut report = DerReport::default();
    let mut cooccurrence = vec![vec![0.0; ref_labels.len()]; hyp_labels.len()];
    for piece in &pieces {
        let n_ref = piece.n_ref() as f64;
        let n_hyp = piece.n_hyp() as f64;
        report.total_s += n_ref * piece.duration_s;
        report.missed_s += (n_ref - n_hyp).max(0.0) * piece.duration_s;
        report.false_alarm_s += (n_hyp - n_ref).max(0.0) * piece.duration_s;
        for &(h, hyp_count) in &piece.hyp {
            for &(r, ref_count) in &piece.reference {
                // Each (hypothesis turn, reference turn) pair adds its shared time, as
                // pyannote's `Annotation.__mul__` does.
                cooccurrence[h][r] += f64::from(hyp_count * ref_count) * piece.duration_s;
            }
        }
    }

    let hyp_to_ref = optimal_mapping(&cooccurrence);
    for piece in &pieces {
        let matched = piece.n_ref().min(piece.n_hyp());
        let confused = matched - piece.n_correct(&hyp_to_ref);
        report.confusion_s += f64::from(confused) * piece.duration_s;
    }
    report.mapping = speaker_mapping(&hyp_labels, &ref_labels, &hyp_to_ref, &pieces);
    report
}

/// The UEM (or extent) minus reference-boundary collars and, optionally, reference overlap —
/// pyannote's `UEMSupportMixin.extrude`. Returns sorted, disjoint, non-empty intervals.
fn evaluated_region(base: Vec<Interval>, reference: &[&Turn], opts: &DerOptions) -> Vec<Interval> {
    let base = union(base);
    let mut removed = Vec::new();
    if opts.collar_s > 0.0 {
        let half = 0.5 * opts.collar_s;
        for turn in reference {
            removed.push((turn.start_s - half, turn.start_s + half));
            removed.push((turn.end_s - half, turn.end_s + half));
        }
    }
    if opts.skip_overlap {
        removed.extend(reference_overlap(reference));
    }
    subtract(&base, &union(removed))
}

/// Sorted, disjoint union of intervals (touching intervals merge, empty ones vanish).
fn union(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|(start, end)| end - start > SEGMENT_PRECISION_S);
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `base` minus `removed`; both sorted and disjoint. Slivers under 1 µs are dropped, as
/// pyannote's `Timeline.gaps` drops them.
fn subtract(base: &[Interval], removed: &[Interval]) -> Vec<Interval> {
    let mut kept = Vec::new();
    for &(base_start, base_end) in base {
        let mut cursor = base_start;
        for &(cut_start, cut_end) in removed {
            if cut_end <= cursor || cut_start >= base_end {
                continue;
            }
            push_non_empty(&mut kept, cursor, cut_start.min(base_end));
            cursor = cursor.max(cut_end);
        }
        push_non_empty(&mut kept, cursor, base_end);
    }
    kept
}

fn push_non_empty(intervals: &mut Vec<Interval>, start: f64, end: f64) {
    if end - start > SEGMENT_PRECISION_S {
        intervals.push((start, end));
    }
}

/// Where two or more reference turns are active (any speakers, including the same one twice).
fn reference_overlap(reference: &[&Turn]) -> Vec<Interval> {
    let mut events: Vec<(f64, i32)> = reference
        .iter()
        .flat_map(|t| [(t.start_s, 1), (t.end_s, -1)])
        .collect();
    // Ends before starts at the same instant: touching turns do not overlap.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut overlap = Vec::new();
    let mut active = 0;
    let mut overlap_start = 0.0;
    for (time, delta) in events {
        let before = active;
        active += delta;
        if before < 2 && active >= 2 {
            overlap_start = time;
        } else if before >= 2 && active < 2 {
            overlap.push((overlap_start, time));
        }
    }
    overlap
}

/// Speaker labels of one side, indexed in sorted order.
struct Labels<'a> {
    names: Vec<&'a str>,
}

impl<'a> Labels<'a> {
    fn of(turns: &[&'a Turn]) -> Self {
        let mut names: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        Labels { names }
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    fn index(&self, name: &str) -> usize {
        // Every label comes from the same turns the table was built from.
        self.names.binary_search(&name).unwrap_or_default()
    }
}

/// A stretch of the evaluated region in which no turn starts or ends.
struct Piece {
    duration_s: f64,
    /// (reference speaker index, number of its turns active).
    reference: Vec<(usize, u32)>,
    /// (hypothesis speaker index, number of its turns active).
    hyp: Vec<(usize, u32)>,
}

impl Piece {
    fn n_ref(&self) -> u32 {
        self.reference.iter().map(|&(_, n)| n).sum()
    }

    fn n_hyp(&self) -> u32 {
        self.hyp.iter().map(|&(_, n)| n).sum()
    }

    /// Reference turns matched by a hypothesis turn of the mapped speaker: per reference speaker,
    /// the smaller of the two turn counts (pyannote's per-segment `LabelMatcher`).
    fn n_correct(&self, hyp_to_ref: &[Option<usize>]) -> u32 {
        self.hyp
            .iter()
            .filter_map(|&(h, hyp_count)| {
                let r = hyp_to_ref[h]?;
                let ref_count = self.reference.iter().find(|&&(rr, _)| rr == r)?.1;
                Some(hyp_count.min(ref_count))
            })
            .sum()
    }
}

/// What changes at one instant of the sweep.
#[derive(Clone, Copy)]
enum Change {
    Region(i32),
    Reference(usize, i32),
    Hypothesis(usize, i32),
}

/// Cuts the evaluated region at every turn and region boundary and records, for each piece
/// where anyone speaks, which speakers are active. Exact: no frame grid.
fn sweep(
    reference: &[&Turn],
    ref_labels: &Labels,
    hypothesis: &[&Turn],
    hyp_labels: &Labels,
    region: &[Interval],
) -> Vec<Piece> {
    let mut events: Vec<(f64, Change)> = Vec::new();
    for &(start, end) in region {
        events.push((start, Change::Region(1)));
        events.push((end, Change::Region(-1)));
    }
    for turn in reference {
        let r = ref_labels.index(&turn.speaker);
        events.push((turn.start_s, Change::Reference(r, 1)));
        events.push((turn.end_s, Change::Reference(r, -1)));
    }
    for turn in hypothesis {
        let h = hyp_labels.index(&turn.speaker);
        events.push((turn.start_s, Change::Hypothesis(h, 1)));
        events.push((turn.end_s, Change::Hypothesis(h, -1)));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut in_region = 0;
    let mut ref_active = vec![0i32; ref_labels.len()];
    let mut hyp_active = vec![0i32; hyp_labels.len()];
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let time = events[i].0;
        // Apply every change at this instant before looking at the stretch that follows it.
        while i < events.len() && events[i].0 == time {
            match events[i].1 {
                Change::Region(d) => in_region += d,
                Change::Reference(r, d) => ref_active[r] += d,
                Change::Hypothesis(h, d) => hyp_active[h] += d,
            }
            i += 1;
        }
        let Some(&(next_time, _)) = events.get(i) else {
            break;
        };
        if in_region > 0 {
            let piece = Piece {
                duration_s: next_time - time,
                reference: active_counts(&ref_active),
                hyp: active_counts(&hyp_active),
            };
            if !piece.reference.is_empty() || !piece.hyp.is_empty() {
                pieces.push(piece);
            }
        }
    }
    pieces
}

fn active_counts(active: &[i32]) -> Vec<(usize, u32)> {
    active
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(index, &n)| (index, n.unsigned_abs()))
        .collect()
}

/// One-to-one hypothesis → reference mapping maximising co-occurrence time; a hypothesis speaker
/// is only mapped where the pair actually co-occurs (pyannote's `HungarianMapper`).
fn optimal_mapping(cooccurrence: &[Vec<f64>]) -> Vec<Option<usize>> {
    let assignment = max_weight_assignment(cooccurrence);
    assignment
        .iter()
        .enumerate()
        .map(|(h, r)| r.filter(|&r| cooccurrence[h][r] > 0.0))
        .collect()
}

/// Report form of the mapping, for hypothesis speakers that speak inside the evaluated region.
fn speaker_mapping(
    hyp_labels: &Labels,
    ref_labels: &Labels,
    hyp_to_ref: &[Option<usize>],
    pieces: &[Piece],
) -> Vec<(String, Option<String>)> {
    let mut active = vec![false; hyp_labels.len()];
    for piece in pieces {
        for &(h, _) in &piece.hyp {
            active[h] = true;
        }
    }
    hyp_labels
        .names
        .iter()
        .enumerate()
        .filter(|&(h, _)| active[h])
        .map(|(h, name)| {
            let mapped = hyp_to_ref[h].map(|r| ref_labels.names[r].to_string());
            (name.to_string(), mapped)
        })
        .collect()
}

/// Maximum-weight assignment of rows to columns (Hungarian algorithm, O(n²m)); returns, per row,
/// its column, or `None` for rows left over when there are more rows than columns.
fn max_weight_assignment(weights: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = weights.len();
    let cols = weights.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return vec![None; rows];
    }
    if rows <= cols {
        let cost: Vec<Vec<f64>> = weights
            .iter()
            .map(|row| row.iter().map(|w| -w).collect())
            .collect();
        return min_cost_assignment(&cost).into_iter().map(Some).collect();
    }
    // More rows than columns: solve the transpose, then invert it.
    let cost: Vec<Vec<f64>> = (0..cols)
        .map(|c| (0..rows).map(|r| -weights[r][c]).collect())
        .collect();
    let mut row_to_col = vec![None; rows];
    for (c, r) in min_cost_assignment(&cost).into_iter().enumerate() {
        row_to_col[r] = Some(c);
    }
    row_to_col
}

/// Minimum-cost assignment for an n×m matrix with n ≤ m: every row gets a distinct column.
/// The classic potentials formulation (Kuhn–Munkres with Dijkstra-like row insertion).
fn min_cost_assignment(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    let m = cost[0].len();
    // 1-based arrays, index 0 is the virtual "unassigned" column/row.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; m + 1];
    let mut col_owner = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    for row in 1..=n {
        col_owner[0] = row;
        let mut j0 = 0;
        let mut min_slack = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = col_owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let slack = cost[i0 - 1][j - 1] - u[i0] - v[j];
                if slack < min_slack[j] {
                    min_slack[j] = slack;
                    way[j] = j0;
                }
                if min_slack[j] < delta {
                    delta = min_slack[j];
                    j1 = j;
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[col_owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            j0 = j1;
            if col_owner[j0] == 0 {
                break;
            }
        }
        // Walk the augmenting path back, reassigning columns.
        loop {
            let j1 = way[j0];
            col_owner[j0] = col_owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut row_to_col = vec![0; n];
    for j in 1..=m {
        if col_owner[j] > 0 {
            row_to_col[col_owner[j] - 1] = j - 1;
        }
    }
    row_to_col
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(uri: &str, start_s: f64, end_s: f64, speaker: &str) -> Turn {
        Turn {
            uri: uri.into(),
            start_s,
            end_s,
            speaker: speaker.into(),
        }
    }

    fn one(reference: &[Turn], hypothesis: &[Turn], opts: &DerOptions) -> DerReport {
        let reports = diarization_error(reference, hypothesis, None, opts);
        assert_eq!(reports.len(), 1, "{reports:?}");
        reports.into_values().next().unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn reference() -> Vec<Turn> {
        vec![
            turn("f", 0.0, 4.0, "alice"),
            turn("f", 3.0, 6.0, "bob"),
            turn("f", 7.0, 10.0, "alice"),
        ]
    }

    #[test]
    fn identical_is_zero() {
        let r = one(&reference(), &reference(), &DerOptions::default());
        assert!(close(r.total_s, 10.0));
        assert_eq!(r.error_s(), 0.0);
        assert_eq!(r.der(), 0.0);
    }

    #[test]
    fn relabelled_hypothesis_is_zero_and_reports_the_mapping() {
        let hyp: Vec<Turn> = reference()
            .into_iter()
            .map(|t| Turn {
                speaker: if t.speaker == "alice" { "S1" } else { "S0" }.into(),
                ..t
            })
            .collect();
        let r = one(&reference(), &hyp, &DerOptions::default());
        assert_eq!(r.der(), 0.0);
        assert_eq!(
            r.mapping,
            vec![
                ("S0".to_string(), Some("bob".to_string())),
                ("S1".to_string(), Some("alice".to_string()))
            ]
        );
    }

    #[test]
    fn empty_hypothesis_is_all_missed() {
        let r = one(&reference(), &[], &DerOptions::default());
        assert!(close(r.missed_s, 10.0));
        assert!(close(r.der(), 1.0));
        assert!(r.mapping.is_empty());
    }

    #[test]
    fn hypothesis_only_uri_counts_only_inside_a_uem() {
        let hyp = vec![turn("ghost", 1.0, 3.0, "x")];
        let without_uem = diarization_error(&[], &hyp, None, &DerOptions::default());
        assert!(without_uem.is_empty());

        let uem = vec![UemSegment {
            uri: "ghost".into(),
            start_s: 0.0,
            end_s: 2.5,
        }];
        let with_uem = diarization_error(&[], &hyp, Some(&uem), &DerOptions::default());
        let r = &with_uem["ghost"];
        assert_eq!(r.total_s, 0.0);
        assert!(close(r.false_alarm_s, 1.5));
        assert_eq!(
            r.der(),
            1.0,
            "pyannote: no reference but some error = 100 %"
        );
    }

    #[test]
    fn reference_uri_missing_from_the_uem_is_reported_empty() {
        let uem = vec![UemSegment {
            uri: "other".into(),
            start_s: 0.0,
            end_s: 10.0,
        }];
        let reports = diarization_error(&reference(), &[], Some(&uem), &DerOptions::default());
        assert_eq!(reports.len(), 1);
        assert_eq!(reports["f"], DerReport::default());
        assert_eq!(reports["f"].der(), 0.0);
    }

    #[test]
    fn uem_limits_the_evaluated_region() {
        let uem = vec![UemSegment {
            uri: "f".into(),
            start_s: 5.0,
            end_s: 8.0,
        }];
        let hyp = vec![turn("f", 0.0, 10.0, "x")];
        let r = &diarization_error(&reference(), &hyp, Some(&uem), &DerOptions::default())["f"];
        // Inside [5, 8): bob 5–6, alice 7–8; hypothesis x everywhere.
        assert!(close(r.total_s, 2.0));
        assert!(close(r.false_alarm_s, 1.0));
        assert!(close(r.confusion_s, 1.0));
    }

    #[test]
    fn shifted_boundaries_are_errors_without_collar_and_forgiven_with_one() {
        let hyp: Vec<Turn> = reference()
            .into_iter()
            .map(|t| Turn {
                start_s: t.start_s + 0.1,
                end_s: t.end_s + 0.1,
                ..t
            })
            .collect();
        let strict = one(&reference(), &hyp, &DerOptions::default());
        assert!(strict.der() > 0.0);
        let lenient = one(
            &reference(),
            &hyp,
            &DerOptions {
                collar_s: 0.25,
                skip_overlap: false,
            },
        );
        assert!(lenient.error_s() < 1e-9, "{lenient:?}");
        // The collars are taken out of the reference time too.
        assert!(lenient.total_s < strict.total_s);
    }

    #[test]
    fn collar_is_total_width_centred_on_reference_boundaries() {
        let reference = vec![turn("f", 2.0, 6.0, "a")];
        let hyp = vec![turn("f", 2.0, 6.0, "a")];
        let r = one(
            &reference,
            &hyp,
            &DerOptions {
                collar_s: 1.0,
                skip_overlap: false,
            },
        );
        // [2.5, 5.5) remains: ±0.5 s around 2 and 6.
        assert!(close(r.total_s, 3.0), "{r:?}");
    }

    #[test]
    fn overlap_is_scored_per_speaker() {
        // Reference: two speakers overlap on [3, 4). Hypothesis: one speaker for everything.
        let hyp = vec![turn("f", 0.0, 10.0, "x")];
        let r = one(&reference(), &hyp, &DerOptions::default());
        assert!(close(r.total_s, 10.0));
        // x ↔ alice (7 s); bob's 3 s: 1 s missed in the overlap, 2 s confused; 6–7 is false alarm.
        assert!(close(r.missed_s, 1.0), "{r:?}");
        assert!(close(r.confusion_s, 2.0), "{r:?}");
        assert!(close(r.false_alarm_s, 1.0), "{r:?}");

        let skipped = one(
            &reference(),
            &hyp,
            &DerOptions {
                collar_s: 0.0,
                skip_overlap: true,
            },
        );
        assert!(close(skipped.total_s, 8.0));
        assert!(close(skipped.missed_s, 0.0));
    }

    #[test]
    fn same_speaker_overlapping_itself_counts_twice() {
        // pyannote keeps one track per RTTM line, so doubled speech is doubled reference time.
        let reference = vec![turn("f", 0.0, 2.0, "a"), turn("f", 1.0, 3.0, "a")];
        let hyp = vec![turn("f", 0.0, 3.0, "x")];
        let r = one(&reference, &hyp, &DerOptions::default());
        assert!(close(r.total_s, 4.0));
        assert!(close(r.missed_s, 1.0));
        assert_eq!(r.confusion_s, 0.0);
    }

    #[test]
    fn zero_length_turns_are_ignored() {
        let mut reference = reference();
        reference.push(turn("f", 5.0, 5.0, "carol"));
        let r = one(
            &reference,
            &self::reference(),
            &DerOptions {
                collar_s: 0.5,
                skip_overlap: false,
            },
        );
        let without = one(
            &self::reference(),
            &self::reference(),
            &DerOptions {
                collar_s: 0.5,
                skip_overlap: false,
            },
        );
        assert_eq!(r, without);
    }

    #[test]
    fn total_sums_components() {
        let mut reference = reference();
        reference.push(turn("g", 0.0, 5.0, "z"));
        let reports = diarization_error(&reference, &[], None, &DerOptions::default());
        let sum = total(&reports);
        assert!(close(sum.total_s, 15.0));
        assert!(close(sum.der(), 1.0));
    }

    #[test]
    fn hungarian_matches_brute_force() {
        // Deterministic pseudo-random matrices of every small shape.
        let mut seed: u64 = 12345;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 1000) as f64 / 10.0
        };
        for rows in 1..=5 {
            for cols in 1..=5 {
                for _ in 0..20 {
                    let w: Vec<Vec<f64>> = (0..rows)
                        .map(|_| (0..cols).map(|_| next()).collect())
                        .collect();
                    let got = max_weight_assignment(&w);
                    let got_sum: f64 = got
                        .iter()
                        .enumerate()
                        .filter_map(|(r, c)| c.map(|c| w[r][c]))
                        .sum();
                    assert!(close(got_sum, brute_force_best(&w)), "{w:?} → {got:?}");
                    let mut cols_used: Vec<usize> = got.iter().flatten().copied().collect();
                    cols_used.sort_unstable();
                    cols_used.dedup();
                    assert_eq!(cols_used.len(), rows.min(cols));
                }
            }
        }
    }

    fn brute_force_best(w: &[Vec<f64>]) -> f64 {
        fn go(w: &[Vec<f64>], row: usize, used: &mut Vec<bool>) -> f64 {
            if row == w.len() {
                return 0.0;
            }
            let mut best = go(w, row + 1, used); // row left unassigned
            for c in 0..used.len() {
                if !used[c] {
                    used[c] = true;
                    best = best.max(w[row][c] + go(w, row + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        go(w, 0, &mut vec![false; w[0].len()])
    }
}
