package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceSectionNewDocument(t *testing.T) {
	got, err := replaceSection("", "pull", "## Image pull\n\nbody\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "# Benchmarks\n") {
		t.Errorf("new document lacks the title:\n%s", got)
	}
	if !strings.HasSuffix(got, "<!-- pull:begin -->\n## Image pull\n\nbody\n<!-- pull:end -->\n") {
		t.Errorf("section not at the end between markers:\n%s", got)
	}
}

func TestReplaceSectionKeepsOthers(t *testing.T) {
	doc := "# Benchmarks\n\nintro\n\n<!-- pull:begin -->\nold pull\n<!-- pull:end -->\n\n<!-- pods:begin -->\npods\n<!-- pods:end -->\n"
	got, err := replaceSection(doc, "pull", "new pull")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nintro\n\n<!-- pull:begin -->\nnew pull\n<!-- pull:end -->\n\n<!-- pods:begin -->\npods\n<!-- pods:end -->\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Rewriting is stable: running the benchmark twice does not grow the file.
	again, err := replaceSection(got, "pull", "new pull")
	if err != nil || again != got {
		t.Errorf("second replace changed the document (%v):\n%s", err, again)
	}
	// Another section is appended, the pull section untouched.
	withPods, err := replaceSection("# Benchmarks\n\n<!-- pull:begin -->\np\n<!-- pull:end -->\n", "pods", "q")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Benchmarks\n\n<!-- pull:begin -->\np\n<!-- pull:end -->\n\n<!-- pods:begin -->\nq\n<!-- pods:end -->\n"; withPods != want {
		t.Errorf("got:\n%s\nwant:\n%s", withPods, want)
	}
}

func TestReplaceSectionAppendsToForeignDocument(t *testing.T) {
	got, err := replaceSection("# Notes\nno trailing newline", "pull", "x")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Notes\nno trailing newline\n\n<!-- pull:begin -->\nx\n<!-- pull:end -->\n"; got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
}

func TestReplaceSectionRefusesBrokenMarkers(t *testing.T) {
	for _, doc := range []string{
		"<!-- pull:begin -->\nno end\n",
		"no begin\n<!-- pull:end -->\n",
		"<!-- pull:end -->\n<!-- pull:begin -->\n",
		"<!-- pull:begin -->\na\n<!-- pull:end -->\n<!-- pull:begin -->\nb\n<!-- pull:end -->\n",
	} {
		if got, err := replaceSection(doc, "pull", "x"); err == nil {
			t.Errorf("replaceSection(%q) = %q, want an error", doc, got)
		}
	}
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	if err := writeSection(path, "pull", "first"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "pull", "second"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "first") || strings.Count(string(b), "second") != 1 {
		t.Errorf("file after two writes:\n%s", b)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temp files left next to the output: %v", ents)
	}
}
