//! Reads the encoder delay ("priming") of the audio track of an MP4/M4A file from its edit list.
//!
//! AAC encoders put 1024 (ffmpeg) to 2112 (Apple, e.g. iPhone Voice Memos) priming frames before
//! the first real sample and record that in the `elst` box. Symphonia 0.6 parses `elst` but does
//! not apply it, so without this every M4A would start 23–48 ms late. Only box headers and the
//! `moov` box are read; the media data is skipped.
//!
//! Returns `None` for anything that is not a well-formed MP4 with an audio track edit list, so
//! callers simply fall back to no trimming.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// `moov` boxes larger than this are not read (they are a few MB even for hours of audio).
const MAX_MOOV_BYTES: u64 = 64 * 1024 * 1024;

/// Priming of the first audio track: frames at `sample_rate` to drop from the start of the
/// decoded audio. `None` when the file has no such information.
pub(crate) fn audio_priming_frames(path: &Path, sample_rate: u32) -> Option<u64> {
    let moov = read_top_level_box(path, *b"moov")?;
    boxes(&moov)
        .filter(|(kind, _)| kind == b"trak")
        .find_map(|(_, trak)| audio_track_priming(trak))
        .map(|(media_time, timescale)| rescale(media_time, timescale, sample_rate))
}

/// `media_time * rate / timescale`, rounded.
fn rescale(media_time: u64, timescale: u32, rate: u32) -> u64 {
    let ts = u128::from(timescale.max(1));
    let v = (u128::from(media_time) * u128::from(rate) + ts / 2) / ts;
    u64::try_from(v).unwrap_or(0)
}

/// (first edit's media time, media timescale) when `trak` is a sound track with an edit list.
fn audio_track_priming(trak: &[u8]) -> Option<(u64, u32)> {
    let mdia = child(trak, *b"mdia")?;
    let handler = child(mdia, *b"hdlr")?;
    // FullBox header (4) + pre_defined (4), then the handler type.
    if handler.get(8..12)? != b"soun" {
        return None;
    }
    let timescale = mdhd_timescale(child(mdia, *b"mdhd")?)?;
    let elst = child(child(trak, *b"edts")?, *b"elst")?;
    Some((first_media_time(elst)?, timescale))
}

fn mdhd_timescale(mdhd: &[u8]) -> Option<u32> {
    // v1: version/flags 4, creation 8, modification 8; v0: 4, 4, 4.
    let offset = if *mdhd.first()? == 1 { 20 } else { 12 };
    read_u32(mdhd, offset)
}

/// Media time of the first non-empty edit (an empty edit, media time -1, only delays playback).
fn first_media_time(elst: &[u8]) -> Option<u64> {
    let version = *elst.first()?;
    let count = read_u32(elst, 4)? as usize;
    let (entry_len, time_at) = if version == 1 { (20, 8) } else { (12, 4) };
    (0..count).find_map(|i| {
        let at = 8 + i * entry_len + time_at;
        let media_time = if version == 1 {
            i64::from_be_bytes(elst.get(at..at + 8)?.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(elst.get(at..at + 4)?.try_into().ok()?))
        };
        u64::try_from(media_time).ok()
    })
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// Payload of the first child box of `kind`.
fn child(parent: &[u8], kind: [u8; 4]) -> Option<&[u8]> {
    boxes(parent).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

/// Iterates over the boxes packed in `buf` as (type, payload); stops at the first malformed one.
fn boxes(buf: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let (kind, header, size) = parse_header(rest, rest.len() as u64)?;
        let size = usize::try_from(size).ok()?;
        let payload = rest.get(header..size)?;
        rest = &rest[size..];
        Some((kind, payload))
    })
}

/// (type, header length, total box size) of the box at the start of `bytes`; `remaining` is how
/// many bytes the enclosing container has left (a size of 0 means "to the end").
fn parse_header(bytes: &[u8], remaining: u64) -> Option<([u8; 4], usize, u64)> {
    let size32 = read_u32(bytes, 0)?;
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header, size) = match size32 {
        0 => (8, remaining),
        1 => (16, u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        n => (8, u64::from(n)),
    };
    (size >= header as u64 && size <= remaining).then_some((kind, header, size))
}

/// Reads the payload of the first top-level box of `kind`, seeking over the others.
fn read_top_level_box(path: &Path, kind: [u8; 4]) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut pos = 0u64;
    while pos + 8 <= file_len {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(pos)).ok()?;
        let got = file.read(&mut head).ok()?;
        let (box_kind, header, size) = parse_header(&head[..got], file_len - pos)?;
        if box_kind == kind {
            let len = size - header as u64;
            if len > MAX_MOOV_BYTES {
                return None;
            }
            let mut payload = vec![0u8; usize::try_from(len).ok()?];
            file.seek(SeekFrom::Start(pos + header as u64)).ok()?;
            file.read_exact(&mut payload).ok()?;
            return Some(payload);
        }
        pos += size;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn sound_trak(elst_version: u8, media_times: &[i64], timescale: u32) -> Vec<u8> {
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"soun");
        hdlr.extend_from_slice(&[0; 12]);
        let mut mdhd = vec![0u8; 12];
        mdhd.extend_from_slice(&timescale.to_be_bytes());
        mdhd.extend_from_slice(&[0; 8]);
        let mut elst = vec![elst_version, 0, 0, 0];
        elst.extend_from_slice(&(media_times.len() as u32).to_be_bytes());
        for &t in media_times {
            if elst_version == 1 {
                elst.extend_from_slice(&1000u64.to_be_bytes());
                elst.extend_from_slice(&t.to_be_bytes());
            } else {
                elst.extend_from_slice(&1000u32.to_be_bytes());
                elst.extend_from_slice(&(t as i32).to_be_bytes());
            }
            elst.extend_from_slice(&[0, 1, 0, 0]);
        }
        let mdia = [mp4_box(b"mdhd", &mdhd), mp4_box(b"hdlr", &hdlr)].concat();
        let edts = mp4_box(b"elst", &elst);
        mp4_box(
            b"trak",
            &[mp4_box(b"edts", &edts), mp4_box(b"mdia", &mdia)].concat(),
        )
    }

    fn file_with(moov_payload: &[u8]) -> tempfile::NamedTempFile {
        let mut bytes = mp4_box(b"ftyp", b"M4A \0\0\0\0");
        bytes.extend(mp4_box(b"mdat", &[0u8; 100]));
        bytes.extend(mp4_box(b"moov", moov_payload));
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    #[test]
    fn reads_priming_after_mdat_and_skips_empty_edit() {
        let f = file_with(&sound_trak(0, &[-1, 2112], 44_100));
        assert_eq!(audio_priming_frames(f.path(), 44_100), Some(2112));
        assert_eq!(audio_priming_frames(f.path(), 22_050), Some(1056));
        let f = file_with(&sound_trak(1, &[1024], 48_000));
        assert_eq!(audio_priming_frames(f.path(), 48_000), Some(1024));
    }

    #[test]
    fn non_mp4_or_garbage_gives_none() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"RIFF\x10\0\0\0WAVEfmt garbage garbage").unwrap();
        assert_eq!(audio_priming_frames(f.path(), 16_000), None);
        let f = file_with(b"\xff\xff\xff\xfftrak");
        assert_eq!(audio_priming_frames(f.path(), 16_000), None);
    }
}
