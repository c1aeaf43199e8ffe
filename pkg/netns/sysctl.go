package netns

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// SetSysctls writes namespaced sysctls for a pod: net.* inside the network
// namespace pinned at netnsPath, and the IPC ones (kernel.shm*, kernel.msg*,
// kernel.sem, fs.mqueue.*) inside the IPC namespace pinned at ipcnsPath.
// A sysctl that belongs to neither is refused: writing it would change the
// host.
//
// Names come in the dotted form Kubernetes sends ("net.ipv4.ip_forward"),
// where a '/' stands for a literal dot inside one component (an interface
// name such as "eth0.100"), or in slash form ("net/ipv4/conf/eth0.100/...").
//
// How this reaches the namespace: /proc/sys/net and the IPC entries under
// /proc/sys/kernel and /proc/sys/fs/mqueue resolve to the namespaces of the
// thread that opens them, not those of the process or of the /proc mount.
// So the files are opened and written on a locked thread that has setns'd
// into the pinned namespaces (measured on kernel 6.18: a value written that
// way shows in the namespace and leaves the host's untouched, while a file
// opened before setns writes the host's value).
func SetSysctls(netnsPath, ipcnsPath string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	type entry struct{ name, file, value string }
	var entries []entry
	targets := map[int]string{}
	for name, value := range sysctls {
		rel, err := sysctlPath(name)
		if err != nil {
			return err
		}
		if err := validSysctlValue(name, value); err != nil {
			return err
		}
		kind, err := sysctlNamespace(rel)
		if err != nil {
			return fmt.Errorf("netns: sysctl %q: %w", name, err)
		}
		switch kind {
		case unix.CLONE_NEWNET:
			if netnsPath == "" {
				return fmt.Errorf("netns: sysctl %q needs a network namespace", name)
			}
			targets[kind] = netnsPath
		case unix.CLONE_NEWIPC:
			if ipcnsPath == "" {
				return fmt.Errorf("netns: sysctl %q needs an IPC namespace", name)
			}
			targets[kind] = ipcnsPath
		}
		entries = append(entries, entry{name, "/proc/sys/" + rel, value})
	}
	// A stable order, so a failure names the same sysctl every time.
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	return inNamespaces(targets, func() error {
		for _, e := range entries {
			if err := writeSysctl(e.file, e.value); err != nil {
				return fmt.Errorf("netns: sysctl %s=%q: %w", e.name, e.value, err)
			}
		}
		return nil
	})
}

func writeSysctl(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such sysctl")
		}
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sysctlPath checks a sysctl name and turns it into a path relative to
// /proc/sys.
func sysctlPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("netns: empty sysctl name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/') {
			return "", fmt.Errorf("netns: sysctl name %q: invalid character %q", name, c)
		}
	}
	rel := name
	// Whichever separator comes first is the one the name uses; in the
	// dotted form a slash is a literal dot, so swap the two.
	if i := strings.IndexAny(name, "./"); i >= 0 && name[i] == '.' {
		b := []byte(name)
		for j, c := range b {
			switch c {
			case '.':
				b[j] = '/'
			case '/':
				b[j] = '.'
			}
		}
		rel = string(b)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("netns: sysctl name %q: empty or relative component", name)
		}
	}
	return rel, nil
}

func validSysctlValue(name, value string) error {
	if strings.ContainsAny(value, "=\n\x00") {
		return fmt.Errorf("netns: sysctl %q: value %q may not contain '=', newline or NUL", name, value)
	}
	return nil
}

// sysctlNamespace tells which namespace a /proc/sys-relative path belongs to.
// The list matches the sysctls the kernel keeps per namespace and that
// Kubernetes allows for a pod.
func sysctlNamespace(rel string) (int, error) {
	switch {
	case strings.HasPrefix(rel, "net/"):
		return unix.CLONE_NEWNET, nil
	case strings.HasPrefix(rel, "kernel/shm"),
		strings.HasPrefix(rel, "kernel/msg"),
		rel == "kernel/sem",
		strings.HasPrefix(rel, "fs/mqueue/"):
		return unix.CLONE_NEWIPC, nil
	}
	return 0, errors.New("not namespaced by the network or IPC namespace")
}
