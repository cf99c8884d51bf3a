//! Attachment rules: which files may be attached, decided by their content
//! (never by their name or the client's `Content-Type`), how many and how
//! large, and how a client's file name becomes a safe display name.
//!
//! Pure: the HTTP layer feeds each file's bytes into a [`ContentCheck`] as
//! they stream in and acts on its verdict.

use super::ids::AttachmentId;

/// Most files one upload request, and one message, may carry.
pub const MAX_FILES_PER_MESSAGE: usize = 5;
/// Largest accepted file: 20 MiB.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
/// Bytes looked at before the type is decided. Every signature checked here
/// is within the first 32 bytes; the rest lets `infer` recognise formats we
/// refuse, some of which sit further in.
pub const SNIFF_BYTES: usize = 8 * 1024;
/// Longest display name, in bytes (what common file systems allow).
pub const MAX_NAME_BYTES: usize = 255;
/// The display name of a file that came without a usable one.
pub const DEFAULT_NAME: &str = "attachment";

/// Why a file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("at most 5 files may be attached to one message")]
    TooManyFiles,
    #[error("a file may be at most 20 MiB (20,971,520 bytes)")]
    FileTooLarge,
    #[error("only UTF-8 text, PDF and PNG, JPEG, GIF, WebP or BMP images may be attached")]
    UnsupportedType,
    #[error("the file is empty")]
    EmptyFile,
}

impl AttachmentError {
    /// The stable error code clients switch on.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooManyFiles => "too_many_files",
            Self::FileTooLarge => "file_too_large",
            Self::UnsupportedType => "unsupported_type",
            Self::EmptyFile => "empty_file",
        }
    }
}

/// The kinds of files that may be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Text,
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    Bmp,
}

impl FileKind {
    /// The `Content-Type` the file is stored and served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; charset=utf-8",
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Bmp => "image/bmp",
        }
    }

    /// The kind a stored content type names; None for anything else.
    pub fn from_content_type(raw: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Pdf,
            Self::Png,
            Self::Jpeg,
            Self::Gif,
            Self::Webp,
            Self::Bmp,
        ]
        .into_iter()
        .find(|k| k.content_type() == raw)
    }
}

/// Checks one file as it streams in: its size against [`MAX_FILE_BYTES`],
/// its type from its first bytes and, for text, that all of it is UTF-8
/// without NUL. Feed every chunk to [`push`](Self::push), then call
/// [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct ContentCheck {
    size: u64,
    /// The first bytes, kept until the type is decided.
    head: Vec<u8>,
    kind: Option<FileKind>,
    text: TextScan,
}

impl ContentCheck {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the file. An error is final: stop reading.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), AttachmentError> {
        self.size += chunk.len() as u64;
        if self.size > MAX_FILE_BYTES {
            return Err(AttachmentError::FileTooLarge);
        }
        let mut rest = chunk;
        if self.kind.is_none() {
            let take = (SNIFF_BYTES - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.head.len() < SNIFF_BYTES {
                return Ok(());
            }
            self.decide()?;
        }
        if self.kind == Some(FileKind::Text) {
            self.text.push(rest)?;
        }
        Ok(())
    }

    /// The verdict once the whole file is in: its kind and size.
    pub fn finish(mut self) -> Result<(FileKind, u64), AttachmentError> {
        if self.size == 0 {
            return Err(AttachmentError::EmptyFile);
        }
        if self.kind.is_none() {
            self.decide()?;
        }
        let kind = self.kind.ok_or(AttachmentError::UnsupportedType)?;
        if kind == FileKind::Text {
            // Text that stops in the middle of a character is not UTF-8.
            self.text.finish()?;
        }
        Ok((kind, self.size))
    }

    fn decide(&mut self) -> Result<(), AttachmentError> {
        let head = std::mem::take(&mut self.head);
        let kind = sniff(&head)?;
        if kind == FileKind::Text {
            self.text.push(&head)?;
        }
        self.kind = Some(kind);
        Ok(())
    }
}

/// The type of a file from its first bytes. Text is only a candidate here:
/// the caller must still check all of it with a [`TextScan`].
fn sniff(head: &[u8]) -> Result<FileKind, AttachmentError> {
    if let Some(kind) = signature(head) {
        return Ok(kind);
    }
    // Anything `infer` recognises that is not an allowed file with a full
    // signature is refused: executables, archives, media, HTML, XML,
    // scripts. Its image and PDF checks are weaker than `signature` ("BM",
    // "GIF", "%PDF" anywhere in the first KiB), so such a match with no full
    // signature is left to the text rules instead.
    if let Some(found) = infer::get(head) {
        let weak_allowed = matches!(
            found.mime_type(),
            "image/png"
                | "image/jpeg"
                | "image/gif"
                | "image/webp"
                | "image/bmp"
                | "application/pdf"
        );
        if !weak_allowed {
            return Err(AttachmentError::UnsupportedType);
        }
    }
    if looks_like_markup(head) {
        return Err(AttachmentError::UnsupportedType);
    }
    Ok(FileKind::Text)
}

/// The full signatures of the allowed binary formats.
fn signature(head: &[u8]) -> Option<FileKind> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if head.starts_with(PNG) {
        Some(FileKind::Png)
    } else if head.starts_with(b"\xFF\xD8\xFF") {
        Some(FileKind::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(FileKind::Gif)
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some(FileKind::Webp)
    } else if head.starts_with(b"%PDF-") {
        Some(FileKind::Pdf)
    } else if is_bmp(head) {
        Some(FileKind::Bmp)
    } else {
        None
    }
}

/// "BM" alone is how plenty of text starts; a bitmap also has four zero
/// reserved bytes and one of the known DIB header sizes.
fn is_bmp(head: &[u8]) -> bool {
    const DIB_SIZES: [u32; 7] = [12, 40, 52, 56, 64, 108, 124];
    if head.len() < 18 || !head.starts_with(b"BM") || head[6..10] != [0, 0, 0, 0] {
        return false;
    }
    let dib = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
    DIB_SIZES.contains(&dib)
}

/// Whether text starts like HTML, SVG or XML (after a BOM and whitespace):
/// a `<` followed by a letter, `!`, `?` or `/`. Browsers render such files
/// as documents, so they are never accepted as "text".
fn looks_like_markup(head: &[u8]) -> bool {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut rest = body.iter().skip_while(|b| b.is_ascii_whitespace());
    match (rest.next(), rest.next()) {
        (Some(b'<'), Some(next)) => next.is_ascii_alphabetic() || b"!?/".contains(next),
        _ => false,
    }
}

/// Streaming check that text is UTF-8 without NUL, across chunk borders.
#[derive(Debug, Default)]
struct TextScan {
    /// The start of a character cut by the end of the previous chunk (≤ 3 bytes).
    pending: Vec<u8>,
}

impl TextScan {
    fn push(&mut self, bytes: &[u8]) -> Result<(), AttachmentError> {
        if bytes.contains(&0) {
            return Err(AttachmentError::UnsupportedType);
        }
        let joined;
        let bytes = if self.pending.is_empty() {
            bytes
        } else {
            let mut buffer = std::mem::take(&mut self.pending);
            buffer.extend_from_slice(bytes);
            joined = buffer;
            &joined
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            // Only the last character is incomplete: wait for the next chunk.
            Err(e) if e.error_len().is_none() => {
                self.pending = bytes[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(_) => Err(AttachmentError::UnsupportedType),
        }
    }

    fn finish(&self) -> Result<(), AttachmentError> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(AttachmentError::UnsupportedType)
        }
    }
}

/// The display name of an uploaded file: the last path component of what
/// the client sent, without control or bidirectional-override characters,
/// trimmed of spaces and dots, at most [`MAX_NAME_BYTES`]. Only ever shown;
/// files are stored under random ids.
pub fn clean_name(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or("");
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let kept: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .collect();
    let trimmed = kept.trim_matches(|c: char| c.is_whitespace() || c == '.');
    let mut name = String::with_capacity(trimmed.len().min(MAX_NAME_BYTES));
    for c in trimmed.chars() {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        DEFAULT_NAME.to_owned()
    } else {
        name
    }
}

/// Characters that reorder text on screen (`invoice\u{202E}fdp.exe` shows
/// as `invoiceexe.pdf`), plus zero-width and BOM characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A `Content-Disposition: attachment` value for a cleaned display name
/// (RFC 6266): an ASCII `filename` for every browser, and `filename*` in
/// UTF-8 when the name is not plain ASCII.
pub fn content_disposition(name: &str) -> String {
    let plain = |c: char| (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%');
    let fallback: String = name
        .chars()
        .map(|c| if plain(c) { c } else { '_' })
        .collect();
    if name.chars().all(plain) {
        return format!("attachment; filename=\"{fallback}\"");
    }
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        // RFC 8187 attr-char: everything else is percent-encoded.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Why the attachment list of a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentRefError {
    #[error("at most 5 attachments per message")]
    TooMany,
    #[error("an attachment id is not a valid id")]
    Malformed,
    #[error("an attachment is listed twice")]
    Duplicate,
}

/// Parses the attachment ids a message refers to: at most
/// [`MAX_FILES_PER_MESSAGE`], each a valid id, none twice. Whether they
/// exist and belong to the sender is the conversation's to check.
pub fn parse_refs(raw: &[String]) -> Result<Vec<AttachmentId>, AttachmentRefError> {
    if raw.len() > MAX_FILES_PER_MESSAGE {
        return Err(AttachmentRefError::TooMany);
    }
    let mut ids: Vec<AttachmentId> = Vec::with_capacity(raw.len());
    for r in raw {
        let id = AttachmentId::parse(r).ok_or(AttachmentRefError::Malformed)?;
        if ids.contains(&id) {
            return Err(AttachmentRefError::Duplicate);
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a whole file through a check in chunks of `chunk` bytes.
    fn check(bytes: &[u8], chunk: usize) -> Result<(FileKind, u64), AttachmentError> {
        let mut check = ContentCheck::new();
        for part in bytes.chunks(chunk.max(1)) {
            check.push(part)?;
        }
        check.finish()
    }

    fn kind(bytes: &[u8]) -> Result<FileKind, AttachmentError> {
        check(bytes, 7).map(|(k, _)| k)
    }

    fn bmp() -> Vec<u8> {
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&70u32.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&54u32.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&[0; 52]);
        b
    }

    #[test]
    fn allowed_formats_are_known_by_their_signature() {
        let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0, 0, 0, 13]].concat();
        assert_eq!(kind(&png), Ok(FileKind::Png));
        assert_eq!(
            kind(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"),
            Ok(FileKind::Jpeg)
        );
        assert_eq!(kind(b"GIF89a\x01\x00\x01\x00\x00\x00"), Ok(FileKind::Gif));
        assert_eq!(kind(b"RIFF\x24\x00\x00\x00WEBPVP8 "), Ok(FileKind::Webp));
        assert_eq!(kind(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"), Ok(FileKind::Pdf));
        assert_eq!(kind(&bmp()), Ok(FileKind::Bmp));
        assert_eq!(
            kind("Grüße\r\n\tfrom a log file".as_bytes()),
            Ok(FileKind::Text)
        );
    }

    #[test]
    fn disguised_executables_and_archives_are_refused() {
        let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00";
        let pe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00";
        let macho = b"\xCF\xFA\xED\xFE\x07\x00\x00\x01\x03\x00\x00\x00";
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00";
        let gzip = b"\x1F\x8B\x08\x00\x00\x00\x00\x00";
        for bytes in [&elf[..], pe, macho, zip, gzip] {
            assert_eq!(
                kind(bytes),
                Err(AttachmentError::UnsupportedType),
                "{bytes:?}"
            );
        }
        // Printable headers that would pass as UTF-8 are still refused.
        assert_eq!(
            kind(b"MZ this is not text"),
            Err(AttachmentError::UnsupportedType)
        );
        assert_eq!(
            kind(b"#!/bin/sh\nrm -rf /\n"),
            Err(AttachmentError::UnsupportedType)
        );
    }

    #[test]
    fn markup_is_never_text() {
        let cases: [&[u8]; 6] = [
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"<!DOCTYPE html><html><script>alert(1)</script>",
            b"  \n\t<html>",
            b"\xEF\xBB\xBF<?xml version=\"1.0\"?><svg/>",
            b"<!-- comment --><p>hi</p>",
            b"<script>alert(1)</script>",
        ];
        for bytes in cases {
            assert_eq!(
                kind(bytes),
                Err(AttachmentError::UnsupportedType),
                "{bytes:?}"
            );
        }
        assert_eq!(kind(b"<3 thanks for the help"), Ok(FileKind::Text));
        assert_eq!(kind(b"a < b and b > c"), Ok(FileKind::Text));
    }

    #[test]
    fn text_must_be_utf8_without_nul_everywhere() {
        assert_eq!(kind(b"caf\xE9"), Err(AttachmentError::UnsupportedType));
        assert_eq!(kind(b"nul\x00byte"), Err(AttachmentError::UnsupportedType));
        // Past the sniffed head too.
        let mut late = vec![b'a'; SNIFF_BYTES + 100];
        late.push(0xFF);
        assert_eq!(kind(&late), Err(AttachmentError::UnsupportedType));
        // Cut in the middle of the last character.
        assert_eq!(
            kind("ends in ø".as_bytes().split_last().unwrap().1),
            Err(AttachmentError::UnsupportedType)
        );
    }

    #[test]
    fn characters_split_across_chunks_are_fine() {
        let text = "ø€😀".repeat(SNIFF_BYTES);
        for chunk in [1, 2, 3, 5, 4096, SNIFF_BYTES + 1] {
            assert_eq!(
                check(text.as_bytes(), chunk),
                Ok((FileKind::Text, text.len() as u64)),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn bm_and_gif_prose_is_text() {
        assert_eq!(kind(b"BMW parts order #1234"), Ok(FileKind::Text));
        assert_eq!(kind(b"GIF or JIF? Discuss."), Ok(FileKind::Text));
        assert_eq!(kind(b"See the attached %PDF document"), Ok(FileKind::Text));
    }

    #[test]
    fn size_limits_are_exact_and_empty_is_refused() {
        assert_eq!(check(b"", 1), Err(AttachmentError::EmptyFile));
        let exact = vec![b'a'; MAX_FILE_BYTES as usize];
        assert_eq!(
            check(&exact, 64 * 1024),
            Ok((FileKind::Text, MAX_FILE_BYTES))
        );
        let mut over = exact;
        over.push(b'a');
        assert_eq!(check(&over, 64 * 1024), Err(AttachmentError::FileTooLarge));
    }

    #[test]
    fn names_lose_paths_controls_and_bidi_overrides() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("..\\..\\boot.ini")), "boot.ini");
        assert_eq!(clean_name(Some("invoice\u{202E}fdp.exe")), "invoicefdp.exe");
        assert_eq!(clean_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(clean_name(Some("  ..hidden.txt. ")), "hidden.txt");
        assert_eq!(clean_name(Some("..")), DEFAULT_NAME);
        assert_eq!(clean_name(Some("dir/")), DEFAULT_NAME);
        assert_eq!(clean_name(None), DEFAULT_NAME);
        assert_eq!(clean_name(Some("résumé.pdf")), "résumé.pdf");
        let long = clean_name(Some(&"é".repeat(300)));
        assert!(long.len() <= MAX_NAME_BYTES && long.chars().all(|c| c == 'é'));
    }

    #[test]
    fn content_disposition_follows_rfc_6266() {
        assert_eq!(
            content_disposition("report 1.pdf"),
            "attachment; filename=\"report 1.pdf\""
        );
        assert_eq!(
            content_disposition("résumé \"v2\".pdf"),
            "attachment; filename=\"r_sum_ _v2_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf"
        );
    }

    #[test]
    fn content_types_round_trip() {
        for k in [
            FileKind::Text,
            FileKind::Pdf,
            FileKind::Png,
            FileKind::Jpeg,
            FileKind::Gif,
            FileKind::Webp,
            FileKind::Bmp,
        ] {
            assert_eq!(FileKind::from_content_type(k.content_type()), Some(k));
        }
        assert_eq!(FileKind::from_content_type("image/svg+xml"), None);
    }

    #[test]
    fn message_refs_are_few_valid_and_distinct() {
        let id = || AttachmentId::random().0;
        assert_eq!(parse_refs(&[]), Ok(vec![]));
        assert_eq!(parse_refs(&[id(), id()]).map(|v| v.len()), Ok(2));
        assert_eq!(
            parse_refs(&(0..6).map(|_| id()).collect::<Vec<_>>()),
            Err(AttachmentRefError::TooMany)
        );
        assert_eq!(
            parse_refs(&["../x".into()]),
            Err(AttachmentRefError::Malformed)
        );
        let same = id();
        assert_eq!(
            parse_refs(&[same.clone(), same]),
            Err(AttachmentRefError::Duplicate)
        );
    }
}
