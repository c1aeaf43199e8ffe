package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRuntimeArgs(t *testing.T) {
	a := runtimeArgs{root: "/r", log: "/l.json"}
	g := []string{"--root", "/r", "--log", "/l.json", "--log-format", "json"}
	sd := runtimeArgs{root: "/r", log: "/l.json", systemd: true}
	gsd := append(slices.Clone(g), "--systemd-cgroup")
	cases := []struct {
		name string
		got  []string
		want []string
	}{
		{"create", a.create("c1", "/b", "/p", ""), append(slices.Clone(g), "create", "--bundle", "/b", "--pid-file", "/p", "c1")},
		{"create tty", a.create("c1", "/b", "/p", "/s"), append(slices.Clone(g), "create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "c1")},
		{"create systemd", sd.create("c1", "/b", "/p", ""), append(slices.Clone(gsd), "create", "--bundle", "/b", "--pid-file", "/p", "c1")},
		{"start", a.start("c1"), append(slices.Clone(g), "start", "c1")},
		{"kill", a.kill("c1", unix.SIGTERM, false), append(slices.Clone(g), "kill", "c1", "15")},
		{"kill all", a.kill("c1", unix.SIGKILL, true), append(slices.Clone(g), "kill", "--all", "c1", "9")},
		{"delete", a.delete("c1", false), append(slices.Clone(g), "delete", "c1")},
		{"delete force", a.delete("c1", true), append(slices.Clone(g), "delete", "--force", "c1")},
		{"exec", a.exec("c1", "/proc.json", "/e.pid", ""), append(slices.Clone(g), "exec", "--process", "/proc.json", "--pid-file", "/e.pid", "--detach", "c1")},
		{"exec tty", a.exec("c1", "/proc.json", "/e.pid", "/s"), append(slices.Clone(g), "exec", "--process", "/proc.json", "--pid-file", "/e.pid", "--detach", "--console-socket", "/s", "c1")},
		{"update", a.update("c1", "/res.json"), append(slices.Clone(g), "update", "--resources", "/res.json", "c1")},
		{"update systemd", sd.update("c1", "/res.json"), append(slices.Clone(gsd), "update", "--resources", "/res.json", "c1")},
	}
	for _, c := range cases {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, strings.Join(c.got, " "), strings.Join(c.want, " "))
		}
	}
	// The global options are the same for every command and never shared
	// between calls (append on a shared slice would mix them up).
	x, y := a.start("x"), a.kill("y", unix.SIGKILL, true)
	if x[len(x)-1] != "x" || y[len(y)-1] != "9" {
		t.Fatalf("calls share storage: %q %q", x, y)
	}
}

func TestLastLogError(t *testing.T) {
	cases := []struct{ name, log, want string }{
		{"runc", `{"level":"warning","msg":"w","time":"t"}` + "\n" + `{"level":"error","msg":"container does not exist","time":"t"}` + "\n", "container does not exist"},
		{"crun", `{"msg":"error opening file","level":"error","time":"t"}`, "error opening file"},
		{"error then warning", `{"level":"error","msg":"e"}` + "\n" + `{"level":"warning","msg":"w"}`, "e"},
		{"no error", `{"level":"warning","msg":"w"}`, "w"},
		{"garbage", "not json\n", ""},
		{"empty", "", ""},
	}
	for _, c := range cases {
		if got := lastLogError([]byte(c.log)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestReadPidFile(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]int{"123": 123, "456\n": 456, "": 0, "x": 0, "-1": 0} {
		f := dir + "/p"
		if err := writeFile(f, content); err != nil {
			t.Fatal(err)
		}
		got, err := readPidFile(f)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("%q: %d %v, want %d", content, got, err, want)
		}
	}
	if _, err := readPidFile(dir + "/none"); err == nil {
		t.Error("missing pid file accepted")
	}
}

func writeFile(name, s string) error { return os.WriteFile(name, []byte(s), 0o644) }
