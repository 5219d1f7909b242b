#!/usr/bin/env python3
"""Independent check of a REFI-QDA project (.qdpx), Python standard library only.

Usage: scripts/check-qdpx.py PROJECT.qdpx

Re-implements, apart from the Rust code, what an importer does with the archive:
- project.qde sits at the archive root and parses as XML in namespace urn:QDA-XML:project:1.0;
- every internal:// file a source, transcript or note names is in Sources/ and is UTF-8;
- every PlainTextSelection lies inside its text (positions count code points, as Python's str
  does) and, when it has a name, the selected text equals that name (or starts with it when the
  name is cut short with "..." or an ellipsis) -- this is what catches byte-counted offsets;
- every CodeRef names a code, every SourceRef a source, every NoteRef a note;
- SyncPoints lie inside their transcript and time and position never run backwards.

Prints one summary line and exits 0 when all holds; prints each problem and exits 1 otherwise.
"""

import sys
import zipfile
import xml.etree.ElementTree as ET

NS = "{urn:QDA-XML:project:1.0}"


def main(path):
    problems = []
    with zipfile.ZipFile(path) as archive:
        names = {n.lower(): n for n in archive.namelist()}
        if "project.qde" not in archive.namelist():
            print(f"{path}: no project.qde at the archive root")
            return 1
        root = ET.fromstring(archive.read("project.qde"))
        if root.tag != NS + "Project":
            print(f"{path}: root is {root.tag}, expected {NS}Project")
            return 1

        def text_of(element):
            inline = element.find(NS + "PlainTextContent")
            if inline is not None:
                return inline.text or ""
            ref = element.get("plainTextPath", "")
            if not ref.startswith("internal://"):
                problems.append(f"{element.tag} {element.get('guid')}: plainTextPath {ref!r} is not internal://")
                return None
            member = names.get(("Sources/" + ref[len("internal://"):]).lower())
            if member is None:
                problems.append(f"{element.get('guid')}: {ref} is not in Sources/")
                return None
            return archive.read(member).decode("utf-8")

        codes = {c.get("guid").lower() for c in root.iter(NS + "Code")}
        notes = {n.get("guid").lower() for n in root.iter(NS + "Note")}
        for note in root.iter(NS + "Note"):
            text_of(note)
        sources = root.find(NS + "Sources")
        source_guids = set()
        selections = 0
        sync_points = 0
        for source in [] if sources is None else list(sources):
            source_guids.add(source.get("guid").lower())
            if source.tag == NS + "TextSource":
                text = text_of(source)
                if text is None:
                    continue
                for sel in source.findall(NS + "PlainTextSelection"):
                    selections += 1
                    start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
                    where = f"selection {sel.get('guid')} [{start}, {end})"
                    if not 0 <= start <= end <= len(text):
                        problems.append(f"{where}: outside the text ({len(text)} characters)")
                        continue
                    selected = text[start:end]
                    name = sel.get("name")
                    if name is not None and not names_match(name, selected):
                        problems.append(f"{where}: mismatch: text is {selected!r}, name is {name!r}")
            if source.tag in (NS + "AudioSource", NS + "VideoSource"):
                for transcript in source.findall(NS + "Transcript"):
                    text = text_of(transcript)
                    last = (-1, -1)
                    for sp in transcript.findall(NS + "SyncPoint"):
                        sync_points += 1
                        point = (int(sp.get("timeStamp")), int(sp.get("position")))
                        if text is not None and point[1] > len(text):
                            problems.append(f"sync point {sp.get('guid')}: position {point[1]} past the text")
                        if point[0] < last[0] or point[1] < last[1]:
                            problems.append(f"sync point {sp.get('guid')}: runs backwards {last} -> {point}")
                        last = point
        for ref in root.iter(NS + "CodeRef"):
            if ref.get("targetGUID").lower() not in codes:
                problems.append(f"CodeRef to unknown code {ref.get('targetGUID')}")
        for ref in root.iter(NS + "SourceRef"):
            if ref.get("targetGUID").lower() not in source_guids:
                problems.append(f"SourceRef to unknown source {ref.get('targetGUID')}")
        for ref in root.iter(NS + "NoteRef"):
            if ref.get("targetGUID").lower() not in notes:
                problems.append(f"NoteRef to unknown note {ref.get('targetGUID')}")

    for p in problems:
        print(f"{path}: {p}")
    if problems:
        return 1
    print(f"{path}: ok: {len(source_guids)} sources, {selections} selections, "
          f"{sync_points} sync points, {len(codes)} codes")
    return 0


def names_match(name, selected):
    for cut in ("...", "\u2026"):
        if name.endswith(cut):
            return selected.startswith(name[: -len(cut)])
    return name == selected


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
