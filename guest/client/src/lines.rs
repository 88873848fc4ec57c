//! Splitting stdin's bytes into lines, across reads of any size.

/// Collects bytes and hands out complete lines (without the `\n` or `\r\n`).
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Add bytes; return every line they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.pending);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(line);
            } else {
                self.pending.push(byte);
            }
        }
        lines
    }

    /// The last line when the input did not end with a newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let mut splitter = LineSplitter::default();
        let lines = chunks.iter().flat_map(|chunk| splitter.push(chunk)).collect();
        (lines, splitter.finish())
    }

    #[test]
    fn lines_span_reads_of_any_size() {
        let (lines, rest) = split(&[b"fi", b"rst\nsec", b"ond\n\nth", b"ird"]);
        assert_eq!(lines, [b"first".to_vec(), b"second".to_vec(), Vec::new()]);
        assert_eq!(rest, Some(b"third".to_vec()));
    }

    #[test]
    fn crlf_ends_a_line_like_lf_and_other_carriage_returns_stay() {
        let (lines, rest) = split(&[b"one\r\ntwo\r", b"\nthree\r\r\n \r inside\n"]);
        assert_eq!(lines, [b"one".to_vec(), b"two".to_vec(), b"three\r".to_vec(), b" \r inside".to_vec()]);
        assert_eq!(rest, None);
        // A last line without its newline keeps its bytes, a lone `\r` included.
        assert_eq!(split(&[b"last\r"]).1, Some(b"last\r".to_vec()));
    }

    #[test]
    fn bytes_are_not_interpreted() {
        let (lines, rest) = split(&[b"caf\xe9\n\x00\xff"]);
        assert_eq!(lines, [b"caf\xe9".to_vec()]);
        assert_eq!(rest, Some(b"\x00\xff".to_vec()));
    }

    #[test]
    fn finish_is_empty_after_a_complete_line_and_once_taken() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"done\n"), [b"done".to_vec()]);
        assert_eq!(splitter.finish(), None);
        splitter.push(b"partial");
        assert_eq!(splitter.finish(), Some(b"partial".to_vec()));
        assert_eq!(splitter.finish(), None);
    }
}
