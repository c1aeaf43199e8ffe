package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestNewUserSet(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	holder := exec.Command("sleep", "60")
	paths, err := NewUserSet(dir, holder, m, m, 0, Net, IPC, UTS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = Remove(p)
		}
	})
	pid := holder.Process.Pid
	// The holder is the caller's: the pins must outlive it.
	_ = holder.Process.Kill()
	_ = holder.Wait()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Fatalf("holder %d still exists", pid)
	}

	for k, name := range map[int]string{User: "user", Net: "net", IPC: "ipc", UTS: "uts"} {
		if paths[k] != filepath.Join(dir, name) {
			t.Errorf("path of %s = %q", name, paths[k])
		}
		if !IsPinned(paths[k]) {
			t.Errorf("%s is not pinned", paths[k])
		}
	}
	for _, k := range []int{Net, IPC, UTS} {
		owned, err := UserNamespaceOf(paths[k], paths[User])
		if err != nil {
			t.Fatal(err)
		}
		if !owned {
			t.Errorf("%s is not owned by the pinned user namespace", paths[k])
		}
	}
	// The host's own namespaces are not owned by it.
	if owned, err := UserNamespaceOf("/proc/self/ns/net", paths[User]); err != nil || owned {
		t.Errorf("host network namespace owned by the pod's: %v, %v", owned, err)
	}

	// Host root still administers them from outside.
	if err := SetHostname(paths[UTS], "owned"); err != nil {
		t.Errorf("hostname: %v", err)
	}
	if err := SetSysctls(paths[Net], paths[IPC], map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}); err != nil {
		t.Errorf("sysctls: %v", err)
	}
	// IPC sysctls are the namespace root's only (see IPCSysctl).
	if err := SetSysctls(paths[Net], paths[IPC], map[string]string{"kernel.shmmni": "1024"}); err == nil {
		t.Errorf("host root wrote an IPC sysctl of a namespace it does not own: IPCSysctl's reason is gone")
	}
	if err := SetLoopbackUp(paths[Net]); err != nil {
		t.Errorf("loopback: %v", err)
	}
	if out, err := exec.Command("nsenter", "--net="+paths[Net], "--uts="+paths[UTS], "sh", "-c", "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start").Output(); err != nil || strings.Join(strings.Fields(string(out)), " ") != "owned 0" {
		t.Errorf("inside: %q, %v", out, err)
	}

	// The mappings are those asked for, seen by a process that joins.
	out, err := exec.Command("nsenter", "--user="+paths[User], "--net="+paths[Net], "cat", "/proc/self/uid_map").Output()
	if err != nil {
		t.Skipf("nsenter: %v", err)
	}
	if f := strings.Fields(string(out)); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("uid_map = %q", out)
	}
	// Setgroups stays allowed, or containers could not set their groups.
	out, err = exec.Command("nsenter", "--user="+paths[User], "cat", "/proc/self/setgroups").Output()
	if err != nil || strings.TrimSpace(string(out)) != "allow" {
		t.Errorf("setgroups = %q, %v", out, err)
	}

	for _, p := range paths {
		if err := Remove(p); err != nil {
			t.Fatal(err)
		}
		if mountedAt(t, p) {
			t.Errorf("%s still mounted", p)
		}
	}
}

func TestIPCSysctl(t *testing.T) {
	for name, want := range map[string]bool{
		"kernel.shmmni": true, "kernel/shmmax": true, "fs.mqueue.msg_max": true, "kernel.sem": true,
		"net.ipv4.ip_forward": false, "net/ipv4/conf/eth0.100/forwarding": false, "kernel.hostname": false, "bogus": false,
	} {
		if got := IPCSysctl(name); got != want {
			t.Errorf("IPCSysctl(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNewUserSetFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	_, err := NewUserSet(dir, exec.Command("/nonexistent/holder"), m, m, 0, Net)
	if err == nil {
		t.Fatal("no error for a holder that cannot start")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	if _, err := NewUserSet(dir, exec.Command("sleep", "1"), nil, m, 0, Net); err == nil {
		t.Error("no error without uid mappings")
	}
}
