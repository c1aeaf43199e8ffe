package unpack

import "io"

const tarBlockSize = 512

// tailReader passes reads through and counts the zero bytes at the end
// of what it has delivered so far. archive/tar reports io.EOF both after
// the end-of-archive marker (zero blocks) and when the stream simply
// stops between two entries; only the former is a complete layer.
type tailReader struct {
	r     io.Reader
	zeros int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		b := p[:n]
		if b[n-1] != 0 {
			t.zeros = 0
		} else {
			i := len(b)
			for i > 0 && b[i-1] == 0 {
				i--
			}
			if i == 0 {
				t.zeros += int64(n)
			} else {
				t.zeros = int64(n - i)
			}
		}
	}
	return n, err
}

// endsWithZeroBlock accepts one zero block as well as the standard two,
// as GNU tar does. A stream cut at an entry boundary ends with a header or
// file data instead; only a cut right after file data that itself ends in
// 512 zero bytes goes unnoticed here (the caller's digest check sees it).
func (t *tailReader) endsWithZeroBlock() bool { return t.zeros >= tarBlockSize }
