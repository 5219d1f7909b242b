//! Exporter tests: exact output for a hand-built Spanish interview, subtitles parsed back with
//! an independent parser (`subtp`), JSON round trip, and file-writing failures.

use super::*;

/// A text format's output as a string (every format but `.docx`).
fn render(t: &Transcript, f: Format) -> String {
    String::from_utf8(super::render(t, f)).unwrap()
}
use crate::transcript::{
    LanguageInfo, ModelInfo, Segment, SourceInfo, SpeechRegion, TranscribeSettings,
    UntranscribedReason, UntranscribedSpan, Word,
};

const LONG_TEXT: &str = "Cuando llegué a la ciudad no conocía a nadie, así que pasé los \
    primeros meses buscando trabajo y aprendiendo cómo funcionaba todo.";

fn words_every(text: &str, start_ms: u64, step_ms: u64) -> Vec<Word> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, w)| Word {
            text: w.to_string(),
            start_ms: start_ms + i as u64 * step_ms,
            end_ms: start_ms + i as u64 * step_ms + step_ms - 50,
            probability: 0.9,
        })
        .collect()
}

fn segment(id: u32, start_ms: u64, end_ms: u64, text: &str, speaker: Option<&str>) -> Segment {
    let n = text.split_whitespace().count().max(1) as u64;
    Segment {
        id,
        start_ms,
        end_ms,
        text: text.to_string(),
        speaker: speaker.map(str::to_string),
        no_speech_prob: 0.01,
        avg_logprob: -0.25,
        words: words_every(text, start_ms, (end_ms - start_ms) / n),
    }
}

fn interview() -> Transcript {
    Transcript {
        schema: crate::transcript::SCHEMA_NAME.to_string(),
        schema_version: crate::transcript::SCHEMA_VERSION,
        uri: "entrevista-03".to_string(),
        source: SourceInfo {
            path: "audio/entrevista-03.opus".to_string(),
            sha256: "ab".repeat(32),
            duration_ms: 3_725_400,
            sample_rate_hz: 48_000,
            channels: 2,
            codec: "opus".to_string(),
            decode: Default::default(),
        },
        language: LanguageInfo {
            code: "es".to_string(),
            detected: true,
            probability: Some(0.97),
        },
        model: ModelInfo {
            name: "base".to_string(),
            sha256: "cd".repeat(32),
            multilingual: true,
        },
        settings: TranscribeSettings {
            language_requested: "auto".to_string(),
            beam_size: 5,
            vad_threshold: 0.5,
            qualscribe_version: "0.1.0".to_string(),
        },
        speech: vec![SpeechRegion {
            start_ms: 0,
            end_ms: 21_000,
        }],
        segments: vec![
            segment(0, 0, 2_400, "Buenos días, ¿empezamos?", None),
            segment(1, 3_000, 14_500, LONG_TEXT, Some("Ana")),
            segment(2, 15_000, 16_000, "Fue duro.", Some("Ana")),
            segment(3, 3_600_000, 3_601_500, "¿Y ahora?", Some("Luis")),
        ],
        untranscribed: Vec::new(),
    }
}

#[test]
fn txt_has_timestamped_paragraphs_and_turns() {
    let expected = "\
[00:00:00] Buenos días, ¿empezamos?

Ana: [00:00:03] Cuando llegué a la ciudad no conocía a nadie, así que pasé los primeros meses \
buscando trabajo y aprendiendo cómo funcionaba todo.

[00:00:15] Fue duro.

Luis: [01:00:00] ¿Y ahora?
";
    assert_eq!(render(&interview(), Format::Txt), expected);
}

/// The interview with speech nobody transcribed inside Ana's turn and after the last segment.
fn interview_with_gaps() -> Transcript {
    let mut t = interview();
    t.untranscribed = vec![
        UntranscribedSpan {
            start_ms: 14_000,
            end_ms: 14_900,
            reason: UntranscribedReason::DroppedByGuard,
        },
        UntranscribedSpan {
            start_ms: 3_601_000,
            end_ms: 3_603_500,
            reason: UntranscribedReason::NothingDecoded,
        },
    ];
    t
}

/// Whisper's segments cut one of Ana's sentences in two, and Luis speaks for over a minute
/// without punctuation.
fn interview_with_unfinished_segments() -> Transcript {
    let mut t = interview();
    t.segments = vec![
        segment(
            0,
            0,
            4_000,
            "Cuando llegué a la ciudad no conocía",
            Some("Ana"),
        ),
        segment(
            1,
            4_000,
            8_000,
            "a nadie, así que busqué trabajo.",
            Some("Ana"),
        ),
        segment(2, 8_500, 10_000, "Fue duro", Some("Ana")),
        segment(3, 11_000, 40_000, "y luego vino mi hermano", Some("Luis")),
        segment(
            4,
            40_000,
            70_000,
            "que trabajaba en el puerto",
            Some("Luis"),
        ),
        segment(5, 71_000, 80_000, "todos los días", Some("Luis")),
    ];
    t
}

#[test]
fn txt_runs_an_unfinished_sentence_on_into_the_next_segment() {
    let expected = "\
Ana: [00:00:00] Cuando llegué a la ciudad no conocía a nadie, así que busqué trabajo.

[00:00:08] Fue duro

Luis: [00:00:11] y luego vino mi hermano que trabajaba en el puerto

[00:01:11] todos los días
";
    assert_eq!(
        render(&interview_with_unfinished_segments(), Format::Txt),
        expected
    );
    // A mark between two segments ends the paragraph, and the next one names its speaker.
    let mut t = interview_with_unfinished_segments();
    t.untranscribed = vec![UntranscribedSpan {
        start_ms: 3_500,
        end_ms: 3_900,
        reason: UntranscribedReason::DroppedByGuard,
    }];
    assert!(render(&t, Format::Txt).starts_with(
        "Ana: [00:00:00] Cuando llegué a la ciudad no conocía\n\n[inaudible 00:00:03–00:00:04]\n\n\
         Ana: [00:00:04] a nadie, así que busqué trabajo.\n"
    ));
}

#[test]
fn txt_marks_untranscribed_speech_in_time_order() {
    let expected = "\
[00:00:00] Buenos días, ¿empezamos?

Ana: [00:00:03] Cuando llegué a la ciudad no conocía a nadie, así que pasé los primeros meses \
buscando trabajo y aprendiendo cómo funcionaba todo.

[inaudible 00:00:14–00:00:15]

Ana: [00:00:15] Fue duro.

Luis: [01:00:00] ¿Y ahora?

[inaudible 01:00:01–01:00:04]
";
    assert_eq!(render(&interview_with_gaps(), Format::Txt), expected);
}

#[test]
fn md_marks_untranscribed_speech_in_time_order() {
    let md = render(&interview_with_gaps(), Format::Md);
    assert!(
        md.contains("\n\n\\[inaudible 00:00:14–00:00:15\\]\n\n**Ana:** [00:00:15] Fue duro.\n"),
        "{md}"
    );
    assert!(
        md.ends_with("¿Y ahora?\n\n\\[inaudible 01:00:01–01:00:04\\]\n"),
        "{md}"
    );
}

/// The paragraphs of a `.docx` as plain text (the `<w:t>` runs of each `<w:p>`), in order.
fn docx_paragraph_texts(bytes: &[u8]) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("word/document.xml").unwrap(), &mut xml)
        .unwrap();
    let body = &xml[xml.find("<w:body>").unwrap()..];
    body.split("</w:p>")
        .filter(|p| p.contains("<w:p>") || p.contains("<w:p "))
        .map(|p| {
            p.split("<w:t")
                .skip(1)
                .filter_map(|run| {
                    let start = run.find('>')? + 1;
                    let end = run.find("</w:t>")?;
                    Some(run[start..end].replace("&amp;", "&").replace("&lt;", "<"))
                })
                .collect()
        })
        .collect()
}

#[test]
fn docx_has_details_one_paragraph_per_turn_and_inaudible_marks() {
    let paragraphs = docx_paragraph_texts(&super::render(&interview_with_gaps(), Format::Docx));
    let body: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
    assert_eq!(body[0], "entrevista-03");
    assert!(body.contains(&"Duration: 01:02:05"), "{body:?}");
    assert!(body.contains(&"Language: es (detected)"), "{body:?}");
    assert!(body.contains(&"Model: base"), "{body:?}");
    let blank = body.iter().position(|p| p.is_empty()).unwrap();
    assert_eq!(
        &body[blank + 1..],
        [
            "[00:00:00] Buenos días, ¿empezamos?",
            "Ana: [00:00:03] Cuando llegué a la ciudad no conocía a nadie, así que pasé los \
             primeros meses buscando trabajo y aprendiendo cómo funcionaba todo.",
            "[inaudible 00:00:14–00:00:15]",
            "Ana: [00:00:15] Fue duro.",
            "Luis: [01:00:00] ¿Y ahora?",
            "[inaudible 01:00:01–01:00:04]",
        ]
    );
}

#[test]
fn untranscribed_spans_round_trip_through_json_and_are_absent_when_none() {
    let t = interview_with_gaps();
    let json = render(&t, Format::Json);
    assert!(json.contains("\"reason\": \"dropped_by_guard\""), "{json}");
    let back: Transcript = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    assert!(!render(&interview(), Format::Json).contains("untranscribed"));
}

#[test]
fn srt_is_exact() {
    let expected = "\
1
00:00:00,000 --> 00:00:02,350
Buenos días, ¿empezamos?

2
00:00:03,000 --> 00:00:07,648
Ana: Cuando llegué a la
ciudad no conocía a nadie,

3
00:00:07,698 --> 00:00:13,390
Ana: así que pasé los primeros meses
buscando trabajo y aprendiendo cómo

4
00:00:13,440 --> 00:00:14,434
Ana: funcionaba todo.

5
00:00:15,000 --> 00:00:15,950
Ana: Fue duro.

6
01:00:00,000 --> 01:00:01,450
Luis: ¿Y ahora?
";
    assert_eq!(render(&interview(), Format::Srt), expected);
}

#[test]
fn vtt_is_exact() {
    let expected = "\
WEBVTT

00:00:00.000 --> 00:00:02.350
Buenos días, ¿empezamos?

00:00:03.000 --> 00:00:07.648
<v Ana>Cuando llegué a la
ciudad no conocía a nadie,

00:00:07.698 --> 00:00:13.390
<v Ana>así que pasé los primeros meses
buscando trabajo y aprendiendo cómo

00:00:13.440 --> 00:00:14.434
<v Ana>funcionaba todo.

00:00:15.000 --> 00:00:15.950
<v Ana>Fue duro.

01:00:00.000 --> 01:00:01.450
<v Luis>¿Y ahora?
";
    assert_eq!(render(&interview(), Format::Vtt), expected);
}

#[test]
fn md_is_exact() {
    let expected = "\
# entrevista-03

| Duration | Language | Model |
|---|---|---|
| 01:02:05 | es (detected) | base |

[00:00:00] Buenos días, ¿empezamos?

**Ana:** [00:00:03] Cuando llegué a la ciudad no conocía a nadie, así que pasé los primeros \
meses buscando trabajo y aprendiendo cómo funcionaba todo.

[00:00:15] Fue duro.

**Luis:** [01:00:00] ¿Y ahora?
";
    assert_eq!(render(&interview(), Format::Md), expected);
}

#[test]
fn md_escapes_markup_in_text() {
    let mut t = interview();
    t.uri = "grupo_focal".to_string();
    t.segments = vec![segment(0, 0, 1_000, "a *b* <i> | [x]", None)];
    let md = render(&t, Format::Md);
    assert!(md.starts_with("# grupo\\_focal\n"));
    assert!(md.ends_with("[00:00:00] a \\*b\\* \\<i\\> \\| \\[x\\]\n"));
}

/// One cue as both parsers give it: start, end, text lines.
type ParsedCue = (u64, u64, Vec<String>);

fn parse_srt(text: &str) -> Vec<ParsedCue> {
    let srt = subtp::srt::SubRip::parse(text).expect("our SRT parses");
    let ms = |t: &subtp::srt::SrtTimestamp| {
        ((u64::from(t.hours) * 60 + u64::from(t.minutes)) * 60 + u64::from(t.seconds)) * 1000
            + u64::from(t.milliseconds)
    };
    srt.subtitles
        .iter()
        .enumerate()
        .map(|(i, s)| {
            assert_eq!(s.sequence as usize, i + 1, "SRT cues are numbered from 1");
            (ms(&s.start), ms(&s.end), s.text.clone())
        })
        .collect()
}

fn parse_vtt(text: &str) -> Vec<ParsedCue> {
    let vtt = subtp::vtt::WebVtt::parse(text).expect("our VTT parses");
    let ms = |t: &subtp::vtt::VttTimestamp| {
        ((u64::from(t.hours) * 60 + u64::from(t.minutes)) * 60 + u64::from(t.seconds)) * 1000
            + u64::from(t.milliseconds)
    };
    vtt.blocks
        .iter()
        .map(|b| match b {
            subtp::vtt::VttBlock::Que(c) => {
                (ms(&c.timings.start), ms(&c.timings.end), c.payload.clone())
            }
            other => panic!("unexpected VTT block {other:?}"),
        })
        .collect()
}

/// Checks what players need and the subtitling limits, on parsed-back cues.
fn assert_playable(cues: &[ParsedCue], prefix: impl Fn(&str) -> usize) {
    for (i, (start, end, lines)) in cues.iter().enumerate() {
        assert!(end > start, "cue {i} ends after it starts");
        assert!(end - start <= 7_000, "cue {i} lasts at most 7 s");
        assert!((1..=2).contains(&lines.len()), "cue {i} has 1 or 2 lines");
        for line in lines {
            assert!(
                line.chars().count().saturating_sub(prefix(line)) <= 42,
                "line too long: {line}"
            );
            assert!(!line.contains("-->"));
        }
        if let Some((next_start, _, _)) = cues.get(i + 1) {
            assert!(end <= next_start, "cue {i} ends before the next starts");
        }
    }
}

/// Without the speaker label, the label counts against the line too: measure whole lines.
fn no_prefix(_: &str) -> usize {
    0
}

#[test]
fn srt_parses_back_with_an_independent_parser() {
    let t = interview();
    let cues = parse_srt(&render(&t, Format::Srt));
    assert_eq!(cues.len(), 6);
    assert_eq!(cues[1].0, 3_000);
    assert_eq!(
        cues[5],
        (3_600_000, 3_601_450, vec!["Luis: ¿Y ahora?".to_string()])
    );
    assert_playable(&cues, no_prefix);
    let text: Vec<String> = cues.iter().flat_map(|c| c.2.clone()).collect();
    let joined = text.join(" ").replace("Ana: ", "");
    assert!(
        joined.contains(LONG_TEXT),
        "all words survive the split, in order"
    );
}

#[test]
fn subtitles_mark_untranscribed_speech_in_time_order() {
    let t = interview_with_gaps();
    for cues in [
        parse_srt(&render(&t, Format::Srt)),
        parse_vtt(&render(&t, Format::Vtt)),
    ] {
        assert_eq!(cues.len(), 8);
        assert_eq!(
            cues[4],
            (
                14_000,
                14_900,
                vec!["[inaudible 00:00:14–00:00:15]".to_string()]
            )
        );
        assert_eq!(
            cues[7],
            (
                3_601_000,
                3_603_500,
                vec!["[inaudible 01:00:01–01:00:04]".to_string()]
            )
        );
        assert_playable(&cues, no_prefix);
    }
}

#[test]
fn vtt_parses_back_with_an_independent_parser() {
    let t = interview();
    let vtt_cues = parse_vtt(&render(&t, Format::Vtt));
    let srt_cues = parse_srt(&render(&t, Format::Srt));
    assert_eq!(vtt_cues.len(), srt_cues.len());
    for (v, s) in vtt_cues.iter().zip(&srt_cues) {
        assert_eq!((v.0, v.1), (s.0, s.1), "VTT and SRT share cue times");
    }
    assert_eq!(vtt_cues[1].2[0], "<v Ana>Cuando llegué a la");
    // The voice tag is not shown, but the label's room is kept so SRT and VTT match.
    assert_playable(&vtt_cues, |l| if l.starts_with("<v ") { 2 } else { 0 });
}

#[test]
fn vtt_escapes_markup_and_arrows() {
    let mut t = interview();
    t.segments = vec![segment(0, 0, 2_000, "a --> b <i> & c", Some("A&B"))];
    let vtt = render(&t, Format::Vtt);
    assert_eq!(
        vtt,
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.948\n<v A&amp;B>a --&gt; b &lt;i&gt; &amp; c\n"
    );
    assert_eq!(parse_vtt(&vtt).len(), 1);
    let srt = render(&t, Format::Srt);
    assert!(srt.ends_with("A&B: a -> b <i> & c\n"));
}

/// Deterministic pseudo-random segments with awkward timing: overlaps, zero-length words,
/// words past the segment end, segments without words, one overlong word.
fn awkward_transcript() -> Transcript {
    let mut t = interview();
    let mut seed: u64 = 42;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let vocab = [
        "sí",
        "no",
        "¿por qué?",
        "entonces,",
        "la",
        "comunidad",
        "trabajábamos.",
        "y",
    ];
    let mut segments = Vec::new();
    let mut at = 0;
    for id in 0..60u32 {
        let start = at;
        let end = start + next(15_000);
        let mut words: Vec<Word> = (0..next(40))
            .map(|_| {
                let s = start + next(end - start + 1_000);
                Word {
                    text: vocab[next(vocab.len() as u64) as usize].to_string(),
                    start_ms: s,
                    end_ms: s + next(3) * next(900),
                    probability: 0.5,
                }
            })
            .collect();
        words.sort_by_key(|w| w.start_ms);
        if id % 7 == 0 {
            words.push(Word {
                text: "x".repeat(50),
                start_ms: end,
                end_ms: end + 9_000,
                probability: 0.5,
            });
        }
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if id % 5 == 0 {
            words.clear();
        }
        let speaker = ["Ana", "Luis"][next(2) as usize];
        segments.push(Segment {
            id,
            start_ms: start,
            end_ms: end,
            text,
            speaker: (id % 3 != 0).then(|| speaker.to_string()),
            no_speech_prob: 0.0,
            avg_logprob: 0.0,
            words,
        });
        at = (start + next(12_000)).saturating_sub(next(2) * 500);
    }
    t.segments = segments;
    t
}

#[test]
fn awkward_timing_still_gives_playable_subtitles() {
    let t = awkward_transcript();
    let srt = parse_srt(&render(&t, Format::Srt));
    let vtt = parse_vtt(&render(&t, Format::Vtt));
    assert!(srt.len() > 60);
    assert_eq!(srt.len(), vtt.len());
    // The 50-character word cannot be broken: its line is exempt from the length limit.
    let overlong = |l: &str| {
        if l.contains(&"x".repeat(50)) {
            l.chars().count()
        } else {
            0
        }
    };
    assert_playable(&srt, overlong);
    assert_playable(&vtt, |l| {
        overlong(l) + if l.starts_with("<v ") { 2 } else { 0 }
    });
}

#[test]
fn json_round_trips_and_is_byte_stable() {
    let dir = tempfile::tempdir().unwrap();
    let t = interview();
    let json = render(&t, Format::Json);
    assert!(json.ends_with("}\n"));
    assert_eq!(json, render(&t.clone(), Format::Json));
    let written = write_all(&t, dir.path(), &[Format::Json]).unwrap();
    assert_eq!(
        written,
        vec![dir.path().join("entrevista-03.transcript.json")]
    );
    let back = read_transcript(&written[0]).unwrap();
    assert_eq!(back, t);
    assert_eq!(render(&back, Format::Json), json);
}

#[test]
fn read_transcript_errors_are_one_line_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = interview();
    let mut value = serde_json::to_value(&t).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "broken.json",
            "{ not json".to_string(),
            "invalid transcript",
        ),
        (
            "other.json",
            r#"{"schema": "something.else"}"#.to_string(),
            "not a qualscribe",
        ),
        (
            "future.json",
            {
                value["schema_version"] = serde_json::json!(2);
                value.to_string()
            },
            "schema version 2",
        ),
        (
            "shape.json",
            {
                value["schema_version"] = serde_json::json!(1);
                value["segments"] = serde_json::json!("nope");
                value.to_string()
            },
            "invalid transcript",
        ),
    ];
    for (name, body, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let msg = read_transcript(&path).unwrap_err().to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    let missing = dir.path().join("missing.transcript.json");
    let msg = read_transcript(&missing).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("cannot read transcript {}", missing.display())),
        "{msg}"
    );
}

#[test]
fn write_all_writes_every_format_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let t = interview();
    let written = write_all(&t, dir.path(), &Format::ALL).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "entrevista-03.txt",
            "entrevista-03.srt",
            "entrevista-03.vtt",
            "entrevista-03.transcript.json",
            "entrevista-03.md",
            "entrevista-03.docx"
        ]
    );
    for (path, f) in written.iter().zip(Format::ALL) {
        assert_eq!(std::fs::read(path).unwrap(), super::render(&t, f));
    }
    // Twice: the second write replaces files in place, still nothing else in the folder.
    write_all(&t, dir.path(), &Format::ALL).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 6);
}

#[test]
fn write_all_into_missing_or_unusable_folder_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    // A regular file where the folder should be fails even for root, unlike permissions.
    let file_not_dir = dir.path().join("a-file");
    std::fs::write(&file_not_dir, "x").unwrap();
    for out_dir in [missing, file_not_dir] {
        let err = write_all(&interview(), &out_dir, &[Format::Txt]).unwrap_err();
        let msg = err.to_string();
        let target = out_dir.join("entrevista-03.txt");
        assert!(
            msg.starts_with(&format!("cannot write {}: ", target.display())),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}

#[test]
fn formats_parse_case_insensitively_and_expand_all() {
    assert_eq!(
        parse_formats("txt,SRT, Vtt").unwrap(),
        [Format::Txt, Format::Srt, Format::Vtt]
    );
    assert_eq!(parse_formats("all").unwrap(), Format::ALL);
    assert_eq!(
        parse_formats("md,ALL,md").unwrap(),
        [
            Format::Md,
            Format::Txt,
            Format::Srt,
            Format::Vtt,
            Format::Json,
            Format::Docx
        ]
    );
    let err = parse_formats("txt,pdf").unwrap_err();
    assert!(matches!(&err, ExportError::UnknownFormat { name } if name == "pdf"));
    assert!(err.to_string().contains("`pdf`"));
    assert!(matches!(parse_formats(" , "), Err(ExportError::NoFormats)));
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
    }
}

#[test]
fn output_paths_use_the_uri_and_stay_in_the_folder() {
    let out = Path::new("/tmp/out");
    assert_eq!(
        output_path(out, "int-1", Format::Json),
        Path::new("/tmp/out/int-1.transcript.json")
    );
    assert_eq!(
        output_path(out, "int-1", Format::Md),
        Path::new("/tmp/out/int-1.md")
    );
    assert_eq!(
        output_path(out, "../x", Format::Txt),
        Path::new("/tmp/out/.._x.txt")
    );
}

#[test]
fn empty_transcript_renders_valid_empty_files() {
    let mut t = interview();
    t.segments.clear();
    assert_eq!(render(&t, Format::Srt), "");
    assert_eq!(render(&t, Format::Vtt), "WEBVTT\n\n");
    assert_eq!(render(&t, Format::Txt), "");
    assert!(parse_vtt(&render(&t, Format::Vtt)).is_empty());
}
