//! Voice profiles: a speaker named once is recognised by name in other recordings.
//!
//! A profile is one small JSON file in a profile folder, `<name>.voice.json`:
//!
//! ```json
//! {"schema": "qualscribe.voice", "schema_version": 1, "name": "Moderadora",
//!  "model_sha256": "…", "embedding": [192 numbers], "speech_ms": 48210,
//!  "sources": [{"uri": "g1", "speaker": "SPEAKER_00", "speech_ms": 48210}]}
//! ```
//!
//! `embedding` is the unit-length mean CAM++ embedding of the speaker's speech (the speaker's
//! [`super::Speaker::embedding`] in the recording it was enrolled from); no audio and no words
//! are stored. Enrolling the same name again from another recording merges the two, weighted
//! by speech time.
//!
//! Enrolment needs at least [`MIN_ENROL_MS`] of the speaker's speech outside overlap (and
//! warns below [`WARN_ENROL_MS`]); `speech_ms` is that clean speech. Given the recording, the
//! embedding is made from the speaker's cleanest speech ([`clean_embedding`]).
//!
//! Naming ([`name_speakers`]): each speaker of a recording is compared (cosine) with every
//! profile. A pair may be named when the cosine is at least the threshold, the speaker has at
//! least [`MIN_NAMED_SPEAKER_MS`] of speech, the profile beats every other profile for that
//! speaker by [`PROFILE_MARGIN`] and the speaker beats every other speaker for that profile by
//! [`SPEAKER_MARGIN`]; such pairs are taken best first, so a name is never given to two
//! speakers of one recording and a speaker gets at most one name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Diarization, DiarizeError, Speaker, SpeakerEmbedder, SpeakerWindow};
use crate::transcript::SpeechRegion;

/// Schema name of a voice profile.
pub const PROFILE_SCHEMA: &str = "qualscribe.voice";
/// Bumped whenever a field changes meaning or a required field is added.
pub const PROFILE_VERSION: u32 = 1;
/// Profile files end with this.
pub const PROFILE_SUFFIX: &str = ".voice.json";
/// A speaker takes an enrolled name when its embedding's cosine similarity to the profile is at
/// least this, with either speaker recipe. First chosen (0.55) on AMI meetings dev00/dev01 and
/// trn07/trn08 (speakers found by diarization, `scripts/measure-voices.py`): same person
/// 0.67–0.80, different people −0.05–0.32. The real-voice mixes (`scripts/make-voice-mix.py`,
/// tuning half mix1–3, each person enrolled from their speaker with most speech) put a person who
/// was never enrolled at 0.55 to an enrolled voice of the same sex and channel (named wrongly at
/// 0.55), while enrolled people found again scored 0.72–0.89; 0.60 sits between both sets.
///
/// The segmentation recipe's speakers are compared by their clean voice, made as a profile is
/// ([`set_clean_voices`]); its own timeline-piece mean needed 0.70 and still named one person
/// wrongly on held-out pairs. Measured with `scripts/measure-voices.py --enrol` (profiles by
/// `speakers enroll`; margins and minimums below; `examples/diarize_sweep --rttm-dir`).
/// Tuning half (AMI dev00/01 + trn07/08 pairs, every pair of mixes 1–3), named / occurring:
/// windows 21 of 22 at 0.55–0.60 (0.65: 19; 0.50: 2 wrong), segmentation with clean voices
/// (30 s, 800 ms step; 1600 ms since, the same names) 21 of 24 at 0.60–0.65 (0.70: 20; 0.55:
/// 1 wrong; with a profile's 60 s and 400 ms step: 20 of 24 at 0.55–0.70): 0.60 is in both
/// safe ranges, so one value.
/// Reported half (the other 12 AMI pairs, every pair of mixes 4–6), none wrong in any row:
/// windows AMI 3 of 7, mixes 14 of 16 (the same with clean voices: no gain, so windows keeps
/// its own embedding and costs nothing more); segmentation with clean voices AMI 2 of 7, mixes
/// 12 of 16 (its own embedding at 0.70: 2 of 7 with 1 wrong, 9 of 16). Close call there: the
/// person behind the old wrong name (AMI trn03 → trn00) scores 0.5996 with a speaker holding
/// 3.0 s of them and 3.2 s of someone else (they have no speaker of their own in trn00). Every
/// held-out miss is such a diarization miss, not a threshold one; AS-norm against a cohort of
/// FLEURS voices, tuned on the same pairs (21 → 23 of 24 named), named 2 wrongly on AMI there.
pub const VOICE_THRESHOLD: f32 = 0.60;
/// A speaker takes a name only when the profile is closer to it than to any other speaker of
/// the recording by at least this: two speakers alike to one voice (a person split in two, or
/// two similar voices) and neither is sure. Tuned with [`PROFILE_MARGIN`] and
/// [`MIN_NAMED_SPEAKER_MS`] on the real-voice mixes' tuning half (mix1–3, both speaker recipes)
/// and AMI dev00/01 + trn07/08 (`scripts/measure-voices.py`): no value up to 0.10 (profile
/// margin up to 0.15, speaker minimum up to 6 s) lost a right name there at threshold 0.60
/// (0.15 lost one), so the middle of each safe range is taken — they guard against what the
/// tuning data did not show. Choosing the one-to-one assignment with the highest total
/// similarity instead of best-first gave the same names everywhere, so best-first stays.
pub const SPEAKER_MARGIN: f32 = 0.05;
/// A speaker takes a name only when that profile is closer to it than any other profile by at
/// least this: a voice between two enrolled people is named as neither. (At threshold 0.50 on
/// the tuning mixes, 0.20 was needed to stop both wrong names; 0.20 cost a right one with the
/// segmentation recipe.)
pub const PROFILE_MARGIN: f32 = 0.10;
/// A speaker with less speech than this is never named: its embedding rests on too little.
pub const MIN_NAMED_SPEAKER_MS: u64 = 2_000;

/// Least speech outside overlap a voice is enrolled from: below it the profile is mostly noise,
/// other voices and a neighbour's words (a profile from a speaker diarization had mostly merged
/// into others, 1.8 s, named the wrong person on the real-voice mixes).
pub const MIN_ENROL_MS: u64 = 5_000;
/// Below this much speech outside overlap enrolment works but warns that the profile may miss.
pub const WARN_ENROL_MS: u64 = 15_000;

/// The profile folder used when none is given: `$QUALSCRIBE_VOICES`, else
/// `${XDG_DATA_HOME:-~/.local/share}/qualscribe/voices`.
pub fn default_voices_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUALSCRIBE_VOICES") {
        return PathBuf::from(dir);
    }
    directories::BaseDirs::new()
        .map(|b| b.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."))
        .join("qualscribe")
        .join("voices")
}

/// One enrolled voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceProfile {
    /// Always [`PROFILE_SCHEMA`].
    pub schema: String,
    /// Always [`PROFILE_VERSION`] when written by this version.
    pub schema_version: u32,
    /// The name given to matching speakers.
    pub name: String,
    /// SHA-256 of the speaker model the embedding was made with: embeddings of different
    /// models cannot be compared.
    pub model_sha256: String,
    /// Unit-length mean speaker embedding.
    pub embedding: Vec<f32>,
    /// Speech it was computed from, in ms.
    pub speech_ms: u64,
    /// Where it came from.
    pub sources: Vec<ProfileSource>,
}

/// A recording a profile was enrolled from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSource {
    /// The recording's id.
    pub uri: String,
    /// The speaker's id in that recording.
    pub speaker: String,
    /// That speaker's speech, in ms.
    pub speech_ms: u64,
}

/// What can go wrong with profiles. Messages are one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// A profile file is not a voice profile of this version.
    #[error("{}: not a qualscribe voice profile ({reason}); remove it or enroll the voice again", path.display())]
    BadProfile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A profile was made with another speaker model.
    #[error("{}: made with another speaker model; enroll `{name}` again", path.display())]
    OtherModel {
        /// The file.
        path: PathBuf,
        /// The profile's name.
        name: String,
    },
    /// The speaker asked for is not in the recording.
    #[error("no speaker {id} in {uri} (speakers: {known})")]
    NoSpeaker {
        /// The id asked for.
        id: String,
        /// The recording.
        uri: String,
        /// The ids there are.
        known: String,
    },
    /// The diarization has no embedding for the speaker (made by an older version).
    #[error(
        "the speakers of {uri} were found by an older version; run `qualscribe diarize --recluster` on its transcript first"
    )]
    NoEmbedding {
        /// The recording.
        uri: String,
    },
    /// The speaker has too little speech of their own for a profile.
    #[error(
        "{id} of {uri} has only {:.1} s of speech without overlap, too little for a voice profile (at least {:.0} s): enroll this person from a recording where they speak longer",
        *clean_ms as f64 / 1000.0, MIN_ENROL_MS as f64 / 1000.0
    )]
    TooLittleSpeech {
        /// The speaker's id.
        id: String,
        /// The recording.
        uri: String,
        /// The speaker's speech outside overlap, in ms.
        clean_ms: u64,
    },
    /// The name cannot be a file name.
    #[error("`{name}` cannot be a voice name: use letters, digits, spaces, `-`, `_` or `.`")]
    BadName {
        /// The name given.
        name: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VoiceError + '_ {
    move |source| VoiceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The profile file of `name` in `dir`. Names are used as file names, so path separators,
/// control characters and leading dots are refused.
pub fn profile_path(dir: &Path, name: &str) -> Result<PathBuf, VoiceError> {
    let ok = !name.trim().is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
    if !ok {
        return Err(VoiceError::BadName { name: name.into() });
    }
    Ok(dir.join(format!("{name}{PROFILE_SUFFIX}")))
}

/// Every profile in `dir`, sorted by name. Profiles of another speaker model are an error
/// (naming with them would silently fail).
pub fn load_profiles(dir: &Path, model_sha256: &str) -> Result<Vec<VoiceProfile>, VoiceError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(PROFILE_SUFFIX))
        })
        .collect();
    paths.sort();
    let mut profiles = Vec::with_capacity(paths.len());
    for path in paths {
        let profile = read_profile(&path)?;
        if profile.model_sha256 != model_sha256 {
            return Err(VoiceError::OtherModel {
                path,
                name: profile.name,
            });
        }
        profiles.push(profile);
    }
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(profiles)
}

fn read_profile(path: &Path) -> Result<VoiceProfile, VoiceError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let bad = |reason: String| VoiceError::BadProfile {
        path: path.to_path_buf(),
        reason,
    };
    let p: VoiceProfile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if p.schema != PROFILE_SCHEMA || p.schema_version != PROFILE_VERSION {
        return Err(bad(format!("schema {} {}", p.schema, p.schema_version)));
    }
    if p.embedding.is_empty() || p.embedding.iter().any(|x| !x.is_finite()) {
        return Err(bad("empty or invalid embedding".into()));
    }
    Ok(p)
}

/// Speech of speaker `id` outside overlap (turns where nobody else talks), in ms: what a
/// profile can be made from.
pub fn clean_speech_ms(diarization: &Diarization, id: &str) -> u64 {
    diarization
        .turns
        .iter()
        .filter(|t| t.speaker == id && !t.overlap)
        .map(|t| t.end_ms.saturating_sub(t.start_ms))
        .sum()
}

/// Most speech a profile is made from by [`clean_embedding`] (the longest turns first).
pub const CLEAN_PROFILE_MS: u64 = 60_000;
/// Window step of [`clean_embedding`] (denser than diarization's: the enrolled speech is short).
const CLEAN_STEP_MS: u64 = 400;
/// Most speech a speaker's voice for naming is made from ([`set_clean_voices`]): half of a
/// profile's, as it is made for every speaker of every recording.
pub const NAMING_VOICE_MS: u64 = 30_000;
/// Window step of [`set_clean_voices`]: windows (1.6 s) side by side. Half-overlapping windows
/// (800 ms) cost twice as much (1 h of Spanish, 14 speakers: 24 CPU-s, a sixth of the speaker
/// stage) for the same voices: cosine 0.990–0.999 to them on 10 min of Spanish (13 speakers),
/// and the same names on every pair of `scripts/measure-voices.py --enrol` (AMI 3 of 6 and 2
/// of 7, mixes 18 of 18 and 12 of 16, none wrong; tuning and reported halves).
const NAMING_STEP_MS: u64 = 1600;

/// The speaker's cleanest speech, in time order: turns without overlap, longest first until
/// [`CLEAN_PROFILE_MS`]. (Trimming 250 ms off both ends of each turn, against a neighbour's
/// voice near a speaker change, named fewer people on the tuning mixes: 16 of 18 vs 18.)
pub fn clean_regions(diarization: &Diarization, id: &str) -> Vec<SpeechRegion> {
    longest_clean_turns(diarization, id, CLEAN_PROFILE_MS)
}

/// The speaker's turns without overlap, longest first until `max_ms`, in time order.
fn longest_clean_turns(diarization: &Diarization, id: &str, max_ms: u64) -> Vec<SpeechRegion> {
    let mut turns: Vec<SpeechRegion> = diarization
        .turns
        .iter()
        .filter(|t| t.speaker == id && !t.overlap && t.end_ms > t.start_ms)
        .map(|t| SpeechRegion {
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        })
        .collect();
    turns.sort_by_key(|r| std::cmp::Reverse(r.end_ms - r.start_ms));
    let mut total = 0;
    let mut chosen: Vec<SpeechRegion> = turns
        .into_iter()
        .take_while(|r| {
            let take = total < max_ms;
            total += r.end_ms - r.start_ms;
            take
        })
        .collect();
    chosen.sort_by_key(|r| r.start_ms);
    chosen
}

/// A speaker's voice as enrolment makes it and naming compares it: the unit-length mean
/// embedding of the speaker's cleanest speech ([`clean_regions`]), and how alike its windows
/// are.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanVoice {
    /// Unit-length mean of the windows' embeddings.
    pub embedding: Vec<f32>,
    /// Mean cosine of the windows to their mean: low when the speech holds two voices.
    pub purity: f32,
}

/// The speaker's [`CleanVoice`] in `samples_16k`, the recording `diarization` was made from:
/// full-length windows when there are any. `None` when no window fits.
pub fn clean_voice(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    diarization: &Diarization,
    id: &str,
) -> Result<Option<CleanVoice>, DiarizeError> {
    let regions = clean_regions(diarization, id);
    mean_voice(embedder, samples_16k, &regions, CLEAN_STEP_MS)
}

/// The [`CleanVoice`] of `regions`, windows every `step_ms`.
fn mean_voice(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    regions: &[SpeechRegion],
    step_ms: u64,
) -> Result<Option<CleanVoice>, DiarizeError> {
    let windows = embedder.embed_windows(samples_16k, regions, step_ms)?;
    Ok(voice_of_windows(&windows.iter().collect::<Vec<_>>()))
}

/// The [`CleanVoice`] of one speaker's `windows`: the full-length ones when there are any.
fn voice_of_windows(windows: &[&SpeakerWindow]) -> Option<CleanVoice> {
    let full: Vec<&SpeakerWindow> = windows.iter().copied().filter(|w| w.is_full()).collect();
    let chosen = if full.is_empty() {
        windows.to_vec()
    } else {
        full
    };
    let first = chosen.first()?;
    let mut sum = vec![0f32; first.embedding.len()];
    for w in &chosen {
        sum.iter_mut().zip(&w.embedding).for_each(|(s, x)| *s += x);
    }
    // Window embeddings are unit length, so |sum| / n is their mean cosine to the unit mean.
    let purity = sum.iter().map(|x| x * x).sum::<f32>().sqrt() / chosen.len() as f32;
    super::embed::l2_normalize(&mut sum);
    Some(CleanVoice {
        embedding: sum,
        purity,
    })
}

/// The unit-length mean embedding of the speaker's cleanest speech ([`clean_voice`]).
pub fn clean_embedding(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    diarization: &Diarization,
    id: &str,
) -> Result<Option<Vec<f32>>, DiarizeError> {
    Ok(clean_voice(embedder, samples_16k, diarization, id)?.map(|v| v.embedding))
}

/// Gives every speaker of `diarization` its [`CleanVoice`] from `samples_16k`: the speaker's
/// `embedding` becomes the clean one and `voice_purity` is set, so naming compares a profile
/// with a voice made the same way as the profile (the segmentation recipe's own embedding is a
/// mean of timeline pieces, which named fewer people and once wrongly: [`VOICE_THRESHOLD`]). A
/// speaker with no window of clean speech keeps the recipe's embedding. Cost: windows every
/// [`NAMING_STEP_MS`] over at most [`NAMING_VOICE_MS`] per speaker.
pub fn set_clean_voices(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    diarization: &mut Diarization,
) -> Result<(), DiarizeError> {
    // Every speaker's windows go through the network in one call, so the cores stay busy
    // across speakers (one call per speaker left a core idle at each speaker's end: 10 min of
    // Spanish, 13 speakers, 7.3 s wall for 12.1 CPU-s). A window's embedding does not depend
    // on the others in the call (onnxruntime takes one at a time; candle's batches of equal
    // length change it by float rounding), so the voices are those made speaker by speaker.
    let mut regions = Vec::new();
    let mut owner = Vec::new();
    for (i, s) in diarization.speakers.iter().enumerate() {
        let turns = longest_clean_turns(diarization, &s.id, NAMING_VOICE_MS);
        owner.extend(std::iter::repeat_n(i, turns.len()));
        regions.extend(turns);
    }
    let windows = embedder.embed_windows(samples_16k, &regions, NAMING_STEP_MS)?;
    for (i, speaker) in diarization.speakers.iter_mut().enumerate() {
        let own: Vec<&SpeakerWindow> = windows.iter().filter(|w| owner[w.region] == i).collect();
        if let Some(voice) = voice_of_windows(&own) {
            speaker.embedding = Some(voice.embedding);
            speaker.voice_purity = Some(voice.purity);
        }
    }
    Ok(())
}

/// Speakers whose clean voices ([`set_clean_voices`]) are at least `min_cos` alike, the smaller
/// with under [`VOICE_MERGE_MAX_SMALL_MS`] of speech, become one
/// ([`super::DiarizeConfig::voice_merge_above`]): the most alike pair first, the one with less
/// speech joining the other, whose clean voice is then made again from its new turns; until no
/// pair is that alike or `min_speakers` are left. Speakers are then numbered again by first
/// appearance. Why clean voices and not the clustering's centroids: with 8-12 people in 3-5 min
/// (`scripts/make-many-voice-mix.py`) a person's stray 2-5 s became a speaker of its own, and
/// clean voices tell those apart from other people where centroids do not (tuning half: the
/// strays' voices 0.60-0.63 alike their person's, different people at most 0.51). Returns
/// whether any merged.
pub fn merge_alike_voices(
    embedder: &SpeakerEmbedder,
    samples_16k: &[f32],
    diarization: &mut Diarization,
    min_cos: f32,
    min_speakers: usize,
) -> Result<bool, DiarizeError> {
    let mut merged = false;
    while diarization.speakers.len() > min_speakers.max(1) {
        let Some((keep, gone)) = most_alike_pair(&diarization.speakers, min_cos) else {
            break;
        };
        for t in diarization.turns.iter_mut().filter(|t| t.speaker == gone) {
            t.speaker.clone_from(&keep);
        }
        diarization.turns = rebuild_turns(&diarization.turns);
        diarization.speakers.retain(|s| s.id != gone);
        let speech_ms = diarization
            .turns
            .iter()
            .filter(|t| t.speaker == keep)
            .map(|t| t.end_ms - t.start_ms)
            .sum();
        let regions = longest_clean_turns(diarization, &keep, NAMING_VOICE_MS);
        let voice = mean_voice(embedder, samples_16k, &regions, NAMING_STEP_MS)?;
        if let Some(s) = diarization.speakers.iter_mut().find(|s| s.id == keep) {
            s.speech_ms = speech_ms;
            if let Some(voice) = voice {
                s.embedding = Some(voice.embedding);
                s.voice_purity = Some(voice.purity);
            }
        }
        merged = true;
    }
    if merged {
        renumber_speakers(diarization);
    }
    Ok(merged)
}

/// Most speech (ms, overlap included) the smaller of two speakers merged by
/// [`merge_alike_voices`] may have. Why: the strays it undoes are small (2-5 s on the many-voice
/// tuning half, 10.5 s in the 15 min long1), while two large speakers that alike are two people
/// the clustering had plenty of speech to tell apart (mix3's Menardi and Irina, 26 s and 32 s,
/// have clean voices 0.58 alike). 12-20 s scored the same on the tuning halves.
pub const VOICE_MERGE_MAX_SMALL_MS: u64 = 15_000;

/// (the speaker that stays, the one that joins it) of the pair of speakers whose embeddings are
/// most alike, if at least `min_cos` and the smaller has under [`VOICE_MERGE_MAX_SMALL_MS`]; the
/// one with more speech stays.
fn most_alike_pair(speakers: &[Speaker], min_cos: f32) -> Option<(String, String)> {
    let mut best: Option<(usize, usize, f32)> = None;
    for (a, sa) in speakers.iter().enumerate() {
        for (b, sb) in speakers.iter().enumerate().skip(a + 1) {
            let (Some(ea), Some(eb)) = (&sa.embedding, &sb.embedding) else {
                continue;
            };
            if sa.speech_ms.min(sb.speech_ms) >= VOICE_MERGE_MAX_SMALL_MS {
                continue;
            }
            let cos = super::cluster::dot(ea, eb);
            if cos >= min_cos && best.is_none_or(|(_, _, c)| cos > c) {
                best = Some((a, b, cos));
            }
        }
    }
    let (a, b, _) = best?;
    let (keep, gone) = if speakers[b].speech_ms > speakers[a].speech_ms {
        (b, a)
    } else {
        (a, b)
    };
    Some((speakers[keep].id.clone(), speakers[gone].id.clone()))
}

/// The turns again after speakers were merged: each speaker's turns joined where they touch or
/// overlap, cut where the overlap with anyone else starts or ends, `overlap` set from the other
/// speakers; sorted by start, end and speaker.
pub(crate) fn rebuild_turns(turns: &[super::SpeakerTurn]) -> Vec<super::SpeakerTurn> {
    let mut cuts: Vec<u64> = turns.iter().flat_map(|t| [t.start_ms, t.end_ms]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut ids: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let at = |ms: u64| match cuts.binary_search(&ms) {
        Ok(i) | Err(i) => i,
    };
    // Per speaker, how many of its turns cover each span between consecutive cuts.
    let mut cover = vec![vec![0i32; cuts.len()]; ids.len()];
    for t in turns.iter().filter(|t| t.end_ms > t.start_ms) {
        let s = match ids.binary_search(&t.speaker.as_str()) {
            Ok(i) | Err(i) => i,
        };
        cover[s][at(t.start_ms)] += 1;
        cover[s][at(t.end_ms)] -= 1;
    }
    for row in cover.iter_mut() {
        for i in 1..row.len() {
            row[i] += row[i - 1];
        }
    }
    let talking = |i: usize| cover.iter().filter(|row| row[i] > 0).count();
    let mut out = Vec::new();
    for (s, row) in cover.iter().enumerate() {
        // The turn being built: its first span and whether it is overlapped.
        let mut run: Option<(usize, bool)> = None;
        for i in 0..cuts.len() {
            let here = (i + 1 < cuts.len() && row[i] > 0).then(|| talking(i) > 1);
            if run.map(|r| r.1) != here {
                if let Some((start, overlap)) = run {
                    out.push(super::SpeakerTurn {
                        start_ms: cuts[start],
                        end_ms: cuts[i],
                        speaker: ids[s].to_string(),
                        overlap,
                    });
                }
                run = here.map(|overlap| (i, overlap));
            }
        }
    }
    out.sort_by(|a, b| (a.start_ms, a.end_ms, &a.speaker).cmp(&(b.start_ms, b.end_ms, &b.speaker)));
    out
}

/// Ids `SPEAKER_00`, `SPEAKER_01`, … again by first appearance (after merges left gaps);
/// speakers listed in that order.
fn renumber_speakers(diarization: &mut Diarization) {
    let mut first: Vec<(u64, String)> = diarization
        .speakers
        .iter()
        .map(|s| {
            let start = diarization
                .turns
                .iter()
                .filter(|t| t.speaker == s.id)
                .map(|t| t.start_ms)
                .min()
                .unwrap_or(u64::MAX);
            (start, s.id.clone())
        })
        .collect();
    first.sort();
    let new_id = |old: &str| {
        first
            .iter()
            .position(|(_, id)| id == old)
            .map(super::turns::speaker_id)
    };
    for t in diarization.turns.iter_mut() {
        if let Some(id) = new_id(&t.speaker) {
            t.speaker = id;
        }
    }
    for s in diarization.speakers.iter_mut() {
        if let Some(id) = new_id(&s.id) {
            s.id = id;
        }
    }
    diarization.speakers.sort_by(|a, b| a.id.cmp(&b.id));
}

/// Speaker `id` of `diarization`, if a profile may be made from it: it exists and has at least
/// [`MIN_ENROL_MS`] of speech outside overlap.
pub fn check_enrollable<'a>(
    diarization: &'a Diarization,
    id: &str,
) -> Result<&'a Speaker, VoiceError> {
    let speaker = diarization
        .speaker(id)
        .ok_or_else(|| VoiceError::NoSpeaker {
            id: id.into(),
            uri: diarization.uri.clone(),
            known: diarization
                .speakers
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let clean_ms = clean_speech_ms(diarization, id);
    if clean_ms < MIN_ENROL_MS {
        return Err(VoiceError::TooLittleSpeech {
            id: id.into(),
            uri: diarization.uri.clone(),
            clean_ms,
        });
    }
    Ok(speaker)
}

/// Enrolls speaker `id` of `diarization` as `name` in `dir` (created if needed), merging with
/// an existing profile of that name. The profile is `embedding` when given (e.g. from the
/// speaker's cleanest speech, [`clean_embedding`]), else the speaker's embedding in the
/// diarization. Refused when the speaker has less than [`MIN_ENROL_MS`] of speech outside
/// overlap. Returns the saved profile; its last source's `speech_ms` is that clean speech.
pub fn enroll(
    dir: &Path,
    name: &str,
    diarization: &Diarization,
    id: &str,
    embedding: Option<Vec<f32>>,
) -> Result<VoiceProfile, VoiceError> {
    let path = profile_path(dir, name)?;
    let speaker = check_enrollable(diarization, id)?;
    let embedding = embedding
        .or_else(|| speaker.embedding.clone())
        .ok_or_else(|| VoiceError::NoEmbedding {
            uri: diarization.uri.clone(),
        })?;
    let clean_ms = clean_speech_ms(diarization, id);
    let model_sha256 = diarization.settings.model_sha256.clone();
    let source = ProfileSource {
        uri: diarization.uri.clone(),
        speaker: id.into(),
        speech_ms: clean_ms,
    };
    let mut profile = VoiceProfile {
        schema: PROFILE_SCHEMA.into(),
        schema_version: PROFILE_VERSION,
        name: name.into(),
        model_sha256,
        embedding,
        speech_ms: clean_ms,
        sources: vec![source],
    };
    if path.is_file() {
        let old = read_profile(&path)?;
        if old.model_sha256 != profile.model_sha256 {
            return Err(VoiceError::OtherModel {
                path,
                name: name.into(),
            });
        }
        profile = merge(old, profile);
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let json = serde_json::to_string_pretty(&profile).unwrap_or_default() + "\n";
    crate::atomic::write_atomic(&path, json.as_bytes()).map_err(|e| VoiceError::Io {
        path: e.path,
        source: e.source,
    })?;
    Ok(profile)
}

/// Two enrolments of one voice: embeddings averaged by speech time, sources joined (enrolling
/// the same speaker of the same recording again replaces it).
fn merge(old: VoiceProfile, new: VoiceProfile) -> VoiceProfile {
    let mut sources: Vec<ProfileSource> = old
        .sources
        .into_iter()
        .filter(|s| {
            !new.sources
                .iter()
                .any(|n| n.uri == s.uri && n.speaker == s.speaker)
        })
        .collect();
    let old_ms: u64 = sources.iter().map(|s| s.speech_ms).sum();
    let (wo, wn) = (old_ms.max(1) as f32, new.speech_ms.max(1) as f32);
    let mut embedding: Vec<f32> = if sources.is_empty() {
        new.embedding.clone()
    } else {
        old.embedding
            .iter()
            .zip(&new.embedding)
            .map(|(a, b)| a * wo + b * wn)
            .collect()
    };
    super::embed::l2_normalize(&mut embedding);
    sources.extend(new.sources);
    VoiceProfile {
        speech_ms: sources.iter().map(|s| s.speech_ms).sum(),
        sources,
        embedding,
        ..new
    }
}

/// Names the speakers that match a profile (see the module docs). Speakers already named are
/// left alone. Returns `(speaker id, name, similarity)` for each name given.
pub fn name_speakers(
    speakers: &mut [Speaker],
    profiles: &[VoiceProfile],
    threshold: f32,
) -> Vec<(String, String, f32)> {
    let sims = similarities(speakers, profiles);
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (s, row) in sims.iter().enumerate() {
        for (p, sim) in row.iter().enumerate() {
            let Some(sim) = *sim else { continue };
            if sim >= threshold
                && speakers[s].speech_ms >= MIN_NAMED_SPEAKER_MS
                && beats_others(
                    sim,
                    row.iter()
                        .enumerate()
                        .filter(|(q, _)| *q != p)
                        .map(|(_, x)| *x),
                    PROFILE_MARGIN,
                )
                && beats_others(
                    sim,
                    sims.iter()
                        .enumerate()
                        .filter(|(t, _)| *t != s)
                        .map(|(_, r)| r[p]),
                    SPEAKER_MARGIN,
                )
            {
                pairs.push((sim, s, p));
            }
        }
    }
    // Best first; ties by speaker then profile order, so the result is deterministic.
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut named = Vec::new();
    let mut used_profile = vec![false; profiles.len()];
    for (sim, s, p) in pairs {
        if used_profile[p] || speakers[s].name.is_some() {
            continue;
        }
        used_profile[p] = true;
        speakers[s].name = Some(profiles[p].name.clone());
        named.push((speakers[s].id.clone(), profiles[p].name.clone(), sim));
    }
    named
}

/// Per cluster (`centroids`: unit CAM++ centroids of a recording's speakers), whether it is the
/// cluster most alike some enrolled voice, at least `threshold` alike. Such a cluster is kept
/// as a speaker however little it says: the speech floor that removes strays
/// ([`super::pyannote::absorb_small_speakers`]) would otherwise give a quiet, enrolled
/// participant's words to someone else, and a name cannot be given to a speaker that is gone.
/// A stray of a voice that has a larger speaker of its own is not kept: that speaker is the
/// more alike one.
pub fn enrolled_clusters(
    centroids: &[Vec<f32>],
    profiles: &[VoiceProfile],
    threshold: f32,
) -> Vec<bool> {
    let mut known = vec![false; centroids.len()];
    for profile in profiles {
        let best = centroids
            .iter()
            .enumerate()
            .filter(|(_, c)| c.len() == profile.embedding.len())
            .map(|(i, c)| (i, super::cluster::dot(c, &profile.embedding)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((i, sim)) = best
            && sim >= threshold
        {
            known[i] = true;
        }
    }
    known
}

/// Cosine of every unnamed speaker (rows) with every profile (columns); `None` where the
/// speaker is named already, has no embedding, or the sizes differ.
fn similarities(speakers: &[Speaker], profiles: &[VoiceProfile]) -> Vec<Vec<Option<f32>>> {
    speakers
        .iter()
        .map(|speaker| {
            profiles
                .iter()
                .map(|profile| {
                    let e = speaker
                        .embedding
                        .as_ref()
                        .filter(|_| speaker.name.is_none())?;
                    (e.len() == profile.embedding.len())
                        .then(|| e.iter().zip(&profile.embedding).map(|(a, b)| a * b).sum())
                })
                .collect()
        })
        .collect()
}

/// True when `sim` exceeds every other candidate's similarity by at least `margin`.
fn beats_others(sim: f32, others: impl Iterator<Item = Option<f32>>, margin: f32) -> bool {
    others.flatten().all(|o| sim - o >= margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaker(id: &str, e: &[f32]) -> Speaker {
        Speaker {
            id: id.into(),
            name: None,
            speech_ms: 10_000,
            embedding: Some(e.to_vec()),
            voice_purity: None,
        }
    }

    #[test]
    fn merged_speakers_turns_are_joined_and_their_overlap_recomputed() {
        // A and C overlap at 900-1000 (C joins A); B overlaps A's second turn at 1500-1600.
        let turns = vec![
            turn("A", 0, 1000, false),
            turn("A", 900, 1200, false),
            turn("A", 1200, 2000, false),
            turn("B", 1500, 1600, true),
        ];
        let rebuilt = rebuild_turns(&turns);
        assert_eq!(
            rebuilt,
            vec![
                turn("A", 0, 1500, false),
                turn("A", 1500, 1600, true),
                turn("B", 1500, 1600, true),
                turn("A", 1600, 2000, false),
            ]
        );
    }

    #[test]
    fn the_most_alike_pair_joins_the_speaker_with_more_speech() {
        let mut small = speaker("SPEAKER_01", &[0.8, 0.6]);
        small.speech_ms = 2_000;
        let speakers = vec![
            speaker("SPEAKER_00", &[1.0, 0.0]),
            small,
            speaker("SPEAKER_02", &[0.0, 1.0]),
        ];
        assert_eq!(
            most_alike_pair(&speakers, 0.58),
            Some(("SPEAKER_00".into(), "SPEAKER_01".into()))
        );
        assert_eq!(most_alike_pair(&speakers, 0.81), None);
        let mut large = [
            speaker("SPEAKER_00", &[1.0, 0.0]),
            speaker("SPEAKER_01", &[0.8, 0.6]),
        ];
        for s in large.iter_mut() {
            s.speech_ms = VOICE_MERGE_MAX_SMALL_MS;
        }
        assert_eq!(
            most_alike_pair(&large, 0.58),
            None,
            "two large speakers stay two"
        );
    }

    fn profile(name: &str, e: &[f32]) -> VoiceProfile {
        VoiceProfile {
            schema: PROFILE_SCHEMA.into(),
            schema_version: PROFILE_VERSION,
            name: name.into(),
            model_sha256: "m".into(),
            embedding: e.to_vec(),
            speech_ms: 1000,
            sources: Vec::new(),
        }
    }

    #[test]
    fn a_name_goes_to_one_speaker_only_the_closest() {
        let mut speakers = vec![speaker("S0", &[0.8, 0.6]), speaker("S1", &[1.0, 0.0])];
        let profiles = vec![profile("Ana", &[1.0, 0.0])];
        let named = name_speakers(&mut speakers, &profiles, 0.5);
        assert_eq!(named.len(), 1);
        assert_eq!(speakers[1].name.as_deref(), Some("Ana"));
        assert_eq!(speakers[0].name, None);
    }

    #[test]
    fn only_the_cluster_most_alike_an_enrolled_voice_is_marked_and_only_above_the_threshold() {
        let centroids = vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]];
        // Ana's own cluster is 0; cluster 1 (a stray of hers, 0.8 alike) is not marked.
        let ana = profile("Ana", &[1.0, 0.0]);
        assert_eq!(
            enrolled_clusters(&centroids, std::slice::from_ref(&ana), 0.6),
            vec![true, false, false]
        );
        // Two voices, each with its own cluster; a voice like nobody's marks nothing.
        let eva = profile("Eva", &[0.0, 1.0]);
        let nobody = profile("Sol", &[-1.0, 0.0]);
        assert_eq!(
            enrolled_clusters(&centroids, &[ana, eva, nobody], 0.6),
            vec![true, false, true]
        );
        assert_eq!(
            enrolled_clusters(&centroids, &[profile("Luz", &[0.5, -0.866])], 0.6),
            vec![false; 3]
        );
    }

    #[test]
    fn below_the_threshold_nobody_is_named() {
        let mut speakers = vec![speaker("S0", &[0.0, 1.0])];
        let profiles = vec![profile("Ana", &[1.0, 0.0])];
        assert!(name_speakers(&mut speakers, &profiles, 0.5).is_empty());
        assert_eq!(speakers[0].name, None);
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn a_voice_between_two_profiles_or_two_speakers_is_not_named() {
        // Close to both Ana and Eva (cosines 0.80 and 0.75): within the profile margin.
        let between = unit(&[0.8, 0.75, 0.2]);
        let mut speakers = vec![speaker("S0", &between)];
        let profiles = vec![
            profile("Ana", &[1.0, 0.0, 0.0]),
            profile("Eva", &[0.0, 1.0, 0.0]),
        ];
        assert!(name_speakers(&mut speakers, &profiles, 0.5).is_empty());
        // Clearly Ana: named.
        let mut speakers = vec![speaker("S0", &unit(&[0.9, 0.3, 0.1]))];
        assert_eq!(name_speakers(&mut speakers, &profiles, 0.5).len(), 1);
        assert_eq!(speakers[0].name.as_deref(), Some("Ana"));
        // Two speakers almost equally like Ana (0.80 and 0.78): neither is named.
        let mut speakers = vec![
            speaker("S0", &unit(&[0.8, 0.0, 0.6])),
            speaker("S1", &unit(&[0.78, 0.0, -0.626])),
        ];
        let ana = vec![profile("Ana", &[1.0, 0.0, 0.0])];
        assert!(
            name_speakers(&mut speakers, &ana, 0.5).is_empty(),
            "{speakers:?}"
        );
    }

    #[test]
    fn a_speaker_with_too_little_speech_is_not_named() {
        let mut speakers = vec![speaker("S0", &[1.0, 0.0])];
        speakers[0].speech_ms = MIN_NAMED_SPEAKER_MS - 1;
        let profiles = vec![profile("Ana", &[1.0, 0.0])];
        assert!(name_speakers(&mut speakers, &profiles, 0.5).is_empty());
        speakers[0].speech_ms = MIN_NAMED_SPEAKER_MS;
        assert_eq!(name_speakers(&mut speakers, &profiles, 0.5).len(), 1);
    }

    fn turn(
        speaker: &str,
        start_ms: u64,
        end_ms: u64,
        overlap: bool,
    ) -> crate::diarize::SpeakerTurn {
        crate::diarize::SpeakerTurn {
            start_ms,
            end_ms,
            speaker: speaker.into(),
            overlap,
        }
    }

    fn diarization(turns: Vec<crate::diarize::SpeakerTurn>) -> Diarization {
        Diarization::new(
            "g1",
            vec![speaker("SPEAKER_00", &[1.0, 0.0])],
            turns,
            serde_json::from_value(serde_json::json!({
                "num_speakers": null, "min_speakers": 1, "max_speakers": 16, "window_ms": 1600,
                "step_ms": 800, "threshold": 0.2, "min_speaker_ms": 800, "smoothing_windows": 3,
                "overlap_margin": null, "overlap_min_similarity": 0.5, "model_sha256": "m",
                "qualscribe_version": "0"
            }))
            .unwrap(),
        )
    }

    #[test]
    fn enrolment_counts_speech_outside_overlap_and_refuses_too_little() {
        let d = diarization(vec![
            turn("SPEAKER_00", 0, 3000, false),
            turn("SPEAKER_00", 3000, 9000, true),
            turn("SPEAKER_00", 9000, 10_500, false),
        ]);
        assert_eq!(clean_speech_ms(&d, "SPEAKER_00"), 4500);
        let dir = tempfile::tempdir().unwrap();
        let e = enroll(dir.path(), "Ana", &d, "SPEAKER_00", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SPEAKER_00 of g1 has only 4.5 s of speech without overlap, too little for a voice profile (at least 5 s): enroll this person from a recording where they speak longer"
        );
        assert!(!dir.path().join("Ana.voice.json").exists());
        let d = diarization(vec![
            turn("SPEAKER_00", 0, 5000, false),
            turn("SPEAKER_00", 6000, 9000, true),
        ]);
        let p = enroll(dir.path(), "Ana", &d, "SPEAKER_00", None).unwrap();
        assert_eq!((p.speech_ms, p.sources[0].speech_ms), (5000, 5000));
        assert_eq!(p.embedding, vec![1.0, 0.0]);
        // A given embedding (from the cleanest speech) is what is stored.
        let p = enroll(dir.path(), "Eva", &d, "SPEAKER_00", Some(vec![0.0, 1.0])).unwrap();
        assert_eq!(p.embedding, vec![0.0, 1.0]);
    }

    #[test]
    fn the_cleanest_speech_is_the_longest_turns_without_overlap() {
        let mut turns = vec![
            turn("SPEAKER_00", 0, 400, false),
            turn("SPEAKER_00", 1000, 4000, true),
            turn("SPEAKER_01", 5000, 50_000, false),
        ];
        // 30 turns of 5 s, 6 s apart: only the longest fit in CLEAN_PROFILE_MS.
        for i in 0..30u64 {
            turns.push(turn(
                "SPEAKER_00",
                60_000 + i * 6000,
                65_000 + i * 6000 + i * 10,
                false,
            ));
        }
        let d = diarization(turns);
        let regions = clean_regions(&d, "SPEAKER_00");
        let total: u64 = regions.iter().map(|r| r.end_ms - r.start_ms).sum();
        assert!(
            (CLEAN_PROFILE_MS..CLEAN_PROFILE_MS + 5300).contains(&total),
            "{total}"
        );
        assert!(
            regions.windows(2).all(|w| w[0].end_ms <= w[1].start_ms),
            "in time order"
        );
        // The longest (latest) turns; never the overlapped or other speakers' turns.
        let last = regions.last().unwrap();
        assert_eq!(
            (last.start_ms, last.end_ms),
            (60_000 + 29 * 6000, 65_000 + 29 * 6010)
        );
        assert!(regions.iter().all(|r| r.start_ms >= 60_000));
    }

    #[test]
    fn names_that_are_not_file_names_are_refused() {
        let dir = Path::new("/tmp");
        assert!(profile_path(dir, "Moderadora 1").is_ok());
        assert!(profile_path(dir, "José-María").is_ok());
        for bad in ["", " ", "../x", "a/b", ".hidden", "a\nb"] {
            assert!(profile_path(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merging_weights_by_speech_and_replaces_the_same_source() {
        let mut a = profile("Ana", &[1.0, 0.0]);
        a.sources = vec![ProfileSource {
            uri: "g1".into(),
            speaker: "SPEAKER_00".into(),
            speech_ms: 3000,
        }];
        let mut b = profile("Ana", &[0.0, 1.0]);
        b.speech_ms = 1000;
        b.sources = vec![ProfileSource {
            uri: "g2".into(),
            speaker: "SPEAKER_01".into(),
            speech_ms: 1000,
        }];
        let m = merge(a.clone(), b);
        assert_eq!(m.speech_ms, 4000);
        assert_eq!(m.sources.len(), 2);
        assert!(
            (m.embedding[0] - 0.948_683).abs() < 1e-5,
            "{:?}",
            m.embedding
        );
        let again = merge(m, a);
        assert_eq!(again.sources.len(), 2, "same source replaced, not added");
    }
}
