package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// docHeader starts docs/benchmarks.md when it does not exist yet. Each
// benchmark owns one section between its markers and rewrites only that.
const docHeader = `# Benchmarks

Each section below is written by a benchmark program between its own
markers; rerunning a benchmark replaces its section and leaves the others.
`

func markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// replaceSection puts body between the markers of section name in doc:
// replacing what is there, or appending the section when doc has none. A
// document with only one of the markers, or with them in the wrong order,
// is refused rather than guessed at.
func replaceSection(doc, name, body string) (string, error) {
	begin, end := markers(name)
	block := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end + "\n"
	bi, ei := strings.Index(doc, begin), strings.Index(doc, end)
	switch {
	case bi < 0 && ei < 0:
		if doc == "" {
			doc = docHeader
		}
		if !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + block, nil
	case bi < 0 || ei < 0 || ei < bi:
		return "", fmt.Errorf("markers %s and %s missing or out of order", begin, end)
	case strings.Count(doc, begin) > 1 || strings.Count(doc, end) > 1:
		return "", fmt.Errorf("markers of section %q appear more than once", name)
	}
	rest := doc[ei+len(end):]
	rest = strings.TrimPrefix(rest, "\n")
	return doc[:bi] + block + rest, nil
}

// writeSection rewrites section name of the Markdown file at path,
// creating the file when needed. The new file replaces the old one by
// rename, so an interrupted write leaves the old one whole.
func writeSection(path, name, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc, err := replaceSection(string(old), name, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".benchmarks-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(doc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
