package crilog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// entry is one parsed record.
type entry struct {
	ts      time.Time
	stream  string
	partial bool
	content string
}

// parseLine follows the kubelet's parseCRILog: timestamp, stream and tag are
// separated by single spaces, the tag field may carry further tags after ':'
// and only the first is read, and the rest of the line is content.
func parseLine(line []byte) (entry, error) {
	var e entry
	idx := bytes.IndexByte(line, ' ')
	if idx < 0 {
		return e, errors.New("timestamp is not found")
	}
	ts, err := time.Parse(time.RFC3339Nano, string(line[:idx]))
	if err != nil {
		return e, fmt.Errorf("timestamp %q: %v", line[:idx], err)
	}
	e.ts = ts
	line = line[idx+1:]
	idx = bytes.IndexByte(line, ' ')
	if idx < 0 {
		return e, errors.New("stream type is not found")
	}
	e.stream = string(line[:idx])
	if e.stream != "stdout" && e.stream != "stderr" {
		return e, fmt.Errorf("unexpected stream type %q", e.stream)
	}
	line = line[idx+1:]
	idx = bytes.IndexByte(line, ' ')
	if idx < 0 {
		return e, errors.New("log tag is not found")
	}
	tag := string(bytes.SplitN(line[:idx], []byte(":"), 2)[0])
	switch tag {
	case "P":
		e.partial = true
	case "F":
	default:
		return e, fmt.Errorf("unexpected tag %q", tag)
	}
	e.content = string(line[idx+1:])
	return e, nil
}

// parseFile reads every record of a log file. Each record must end in "\n".
func parseFile(t *testing.T, path string) []entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		e, err := parseLine(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// reassemble rebuilds what a stream carried, as the kubelet prints it:
// content of F records followed by a newline, P records as they are.
func reassemble(entries []entry, stream string) string {
	var b strings.Builder
	for _, e := range entries {
		if e.stream != stream {
			continue
		}
		b.WriteString(e.content)
		if !e.partial {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func tags(entries []entry) string {
	var b strings.Builder
	for _, e := range entries {
		if e.partial {
			b.WriteByte('P')
		} else {
			b.WriteByte('F')
		}
	}
	return b.String()
}

func open(t *testing.T, max int) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := Open(path, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

func write(t *testing.T, s interface{ Write([]byte) (int, error) }, data string) {
	t.Helper()
	n, err := s.Write([]byte(data))
	if err != nil || n != len(data) {
		t.Fatalf("Write(%q) = %d, %v", data, n, err)
	}
}

func TestFullLines(t *testing.T) {
	w, path := open(t, 1024)
	out, errs := w.Stream("stdout"), w.Stream("stderr")
	before := time.Now()
	write(t, out, "hello\nworld\n")
	write(t, errs, "oops\n")
	write(t, out, "\n")               // an empty line is a record with no content
	write(t, out, "dos line\r\n")     // "\r\n" ends a line; the "\r" goes
	write(t, out, "keep \r inside\n") // a "\r" elsewhere stays
	write(t, out, "split over ")
	write(t, out, "writes\r")
	write(t, out, "\n")
	after := time.Now()
	out.Close()
	errs.Close()

	got := parseFile(t, path)
	want := []entry{
		{stream: "stdout", content: "hello"},
		{stream: "stdout", content: "world"},
		{stream: "stderr", content: "oops"},
		{stream: "stdout", content: ""},
		{stream: "stdout", content: "dos line"},
		{stream: "stdout", content: "keep \r inside"},
		{stream: "stdout", content: "split over writes"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g := got[i]
		if g.stream != want[i].stream || g.partial || g.content != want[i].content {
			t.Errorf("record %d: %+v, want %+v", i, g, want[i])
		}
		if g.ts.Before(before.Truncate(time.Nanosecond)) || g.ts.After(after) {
			t.Errorf("record %d timestamp %v outside [%v, %v]", i, g.ts, before, after)
		}
	}
	// The raw format: local-zone RFC 3339 with nanoseconds, single spaces.
	raw, _ := os.ReadFile(path)
	first := strings.SplitN(string(raw), "\n", 2)[0]
	fields := strings.SplitN(first, " ", 4)
	if len(fields) != 4 || fields[1] != "stdout" || fields[2] != "F" || fields[3] != "hello" {
		t.Fatalf("raw record %q", first)
	}
	if _, offset := got[0].ts.Zone(); offset != func() int { _, o := time.Now().Zone(); return o }() {
		t.Errorf("timestamp %q is not in the local zone", fields[0])
	}
}

func TestPartialLines(t *testing.T) {
	w, path := open(t, 8)
	out := w.Stream("stdout")
	write(t, out, "0123456789abcdefXYZ\n") // P P F
	write(t, out, "01234567\n")            // exactly the limit: F
	write(t, out, "0123456789abcdef\n")    // twice the limit: P F
	write(t, out, "0123")                  // a long line over several writes
	write(t, out, "4567")
	write(t, out, "89")
	write(t, out, "ab\n")
	write(t, out, "0123456\r\n") // "\r\n" at the limit is still a line end
	write(t, out, "01234567\r")
	write(t, out, "\n")
	write(t, out, strings.Repeat("x", 8*1000)+"\n")
	out.Close()

	got := parseFile(t, path)
	wantTags := "PPF" + "F" + "PF" + "PF" + "F" + "F" + strings.Repeat("P", 999) + "F"
	if tags(got) != wantTags {
		t.Fatalf("tags %s, want %s", tags(got), wantTags)
	}
	for i, e := range got {
		if len(e.content) > 8 {
			t.Fatalf("record %d has %d bytes, over the limit", i, len(e.content))
		}
		if e.partial && len(e.content) != 8 {
			t.Fatalf("partial record %d has %d bytes, want exactly 8", i, len(e.content))
		}
	}
	want := "0123456789abcdefXYZ\n01234567\n0123456789abcdef\n0123456789ab\n0123456\n01234567\n" + strings.Repeat("x", 8000) + "\n"
	if s := reassemble(got, "stdout"); s != want {
		t.Fatalf("reassembled %q", s)
	}
}

func TestRemainderAtClose(t *testing.T) {
	w, path := open(t, 16)
	out, errs := w.Stream("stdout"), w.Stream("stderr")
	write(t, out, "line\nno newline at the end")
	write(t, errs, "last words")
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("late\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	// Writer.Close flushes the streams still open.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := parseFile(t, path)
	if tags(got) != "FPPP" {
		t.Fatalf("tags %s: %+v", tags(got), got)
	}
	if got[1].content != "no newline at th" || got[2].content != "e end" || got[3].content != "last words" {
		t.Fatalf("records %+v", got)
	}
	if reassemble(got, "stdout") != "line\nno newline at the end" || reassemble(got, "stderr") != "last words" {
		t.Fatal("reassembled output differs")
	}
	if _, err := w.Stream("stdout").Write([]byte("x\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("stream of a closed writer: %v", err)
	}
}

func TestBadStreamName(t *testing.T) {
	w, _ := open(t, 0)
	if _, err := w.Stream("stdin").Write([]byte("x\n")); err == nil {
		t.Fatal("stream stdin accepted")
	}
}

// genOutput makes a stream's worth of lines of random lengths, some longer
// than the line limit, marked with the stream's name so that a record mixing
// two streams shows.
func genOutput(r *rand.Rand, mark byte, lines int) string {
	var b strings.Builder
	for i := 0; i < lines; i++ {
		n := r.Intn(300)
		fmt.Fprintf(&b, "%c%d:", mark, i)
		for j := 0; j < n; j++ {
			b.WriteByte(mark)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// feed writes data in random chunk sizes.
func feed(t *testing.T, r *rand.Rand, s interface{ Write([]byte) (int, error) }, data string) {
	for len(data) > 0 {
		n := 1 + r.Intn(700)
		if n > len(data) {
			n = len(data)
		}
		if _, err := s.Write([]byte(data[:n])); err != nil {
			t.Error(err)
			return
		}
		data = data[n:]
	}
}

func checkStreamsClean(t *testing.T, entries []entry) {
	t.Helper()
	for i, e := range entries {
		mark := byte('o')
		if e.stream == "stderr" {
			mark = 'e'
		}
		for j := 0; j < len(e.content); j++ {
			c := e.content[j]
			if c != mark && c != ':' && (c < '0' || c > '9') {
				t.Fatalf("record %d (%s) holds a byte %q of the other stream: %q", i, e.stream, c, e.content)
			}
		}
	}
}

func TestInterleavedStreams(t *testing.T) {
	w, path := open(t, 128)
	r := rand.New(rand.NewSource(1))
	outData := genOutput(r, 'o', 3000)
	errData := genOutput(r, 'e', 3000)
	var wg sync.WaitGroup
	for _, c := range []struct {
		name, data string
		seed       int64
	}{{"stdout", outData, 2}, {"stderr", errData, 3}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := w.Stream(c.name)
			feed(t, rand.New(rand.NewSource(c.seed)), s, c.data)
			s.Close()
		}()
	}
	wg.Wait()
	w.Close()
	got := parseFile(t, path)
	checkStreamsClean(t, got)
	if reassemble(got, "stdout") != outData {
		t.Fatal("stdout differs after reassembly")
	}
	if reassemble(got, "stderr") != errData {
		t.Fatal("stderr differs after reassembly")
	}
}

func TestReopenAfterRename(t *testing.T) {
	w, path := open(t, 64)
	out := w.Stream("stdout")
	write(t, out, "before 1\nbefore 2\nhal")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// Until Reopen the renamed file still receives output.
	write(t, out, "f")
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	write(t, out, " of a line\nafter\n")
	out.Close()

	old := parseFile(t, path+".1")
	if reassemble(old, "stdout") != "before 1\nbefore 2\n" || tags(old) != "FF" {
		t.Fatalf("rotated file: %+v", old)
	}
	cur := parseFile(t, path)
	if reassemble(cur, "stdout") != "half of a line\nafter\n" || tags(cur) != "FF" {
		t.Fatalf("new file: %+v", cur)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o640&^currentUmask() {
		t.Fatalf("mode %v", info.Mode().Perm())
	}

	// Reopen failing (directory gone) keeps the old file in use.
	dir := t.TempDir()
	w2, err := Open(filepath.Join(dir, "x.log"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	os.Remove(filepath.Join(dir, "x.log"))
	os.Remove(dir)
	if err := w2.Reopen(); err == nil {
		t.Fatal("Reopen into a removed directory succeeded")
	}
	if _, err := w2.Stream("stdout").Write([]byte("still fine\n")); err != nil {
		t.Fatal(err)
	}
	if w2.Err() != nil {
		t.Fatal(w2.Err())
	}
}

func currentUmask() os.FileMode {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("crilog-umask-%d", os.Getpid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o777)
	if err != nil {
		return 0
	}
	f.Close()
	defer os.Remove(path)
	info, _ := os.Stat(path)
	return 0o777 &^ info.Mode().Perm()
}

// Rotation while both streams are busy: every record lands whole in one of
// the files, and the files together hold all the output.
func TestReopenUnderLoad(t *testing.T) {
	w, path := open(t, 100)
	r := rand.New(rand.NewSource(4))
	outData := genOutput(r, 'o', 4000)
	errData := genOutput(r, 'e', 4000)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for _, c := range []struct {
		name, data string
		seed       int64
	}{{"stdout", outData, 5}, {"stderr", errData, 6}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := w.Stream(c.name)
			feed(t, rand.New(rand.NewSource(c.seed)), s, c.data)
			s.Close()
		}()
	}
	go func() { wg.Wait(); close(done) }()

	var files []string
	for i := 0; ; i++ {
		select {
		case <-done:
		case <-time.After(time.Millisecond):
			rotated := fmt.Sprintf("%s.%03d", path, i)
			if err := os.Rename(path, rotated); err != nil {
				t.Fatal(err)
			}
			files = append(files, rotated)
			if err := w.Reopen(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		break
	}
	w.Close()
	files = append(files, path)
	if len(files) < 3 {
		t.Logf("only %d files; the writers were quick", len(files))
	}
	var all []entry
	for _, f := range files {
		all = append(all, parseFile(t, f)...)
	}
	checkStreamsClean(t, all)
	if reassemble(all, "stdout") != outData || reassemble(all, "stderr") != errData {
		t.Fatal("output lost or reordered across rotation")
	}
}

func TestWriteAllocations(t *testing.T) {
	w, _ := open(t, 16*1024)
	s := w.Stream("stdout")
	chunk := []byte(strings.Repeat("some log output of a usual length\n", 20))
	s.Write(chunk) // grow the buffers once
	allocs := testing.AllocsPerRun(200, func() { s.Write(chunk) })
	if allocs > 0 {
		t.Fatalf("%.1f allocations per Write, want 0", allocs)
	}
}

func BenchmarkWrite(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "0.log"), 16*1024)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	s := w.Stream("stdout")
	chunk := []byte(strings.Repeat("some log output of a usual length\n", 100))
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Write(chunk)
	}
}
